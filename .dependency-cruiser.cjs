// The house (README, "How the code is laid out"): floors, ground up, and imports only go down.
//   ground   src/*.ts (log, files, run, stdio, hash, profile, table, version), src/net/ and src/i18n/ (the
//            learner's language): no CNI, no Kubernetes
//   kernel   src/kernel/: ip, bridge, iptables, sysctl; the one vocabulary of kernel state; plain errors
//   cni      src/cni/: the protocol (env, config, versions, errors, skeleton, trace)
//   ipam     src/ipam/: allocator, stores, lock, config
//   plugin   src/plugin/: the verbs, and all of the plugin's config      node  src/node/: the node agent
//   explore  src/explore/   lab  src/lab/   cli  src/cli/   main  src/main.ts
// `npm test` runs this check (npm run check), and .dependency-cruiser.per-pod.cjs beside it. A rule names what a
// floor must NOT import; type-only imports count too.
const below = (...floors) => `^src/(?!(?:${floors.join('|')})/)`;
const floor = (name, allowed) => ({
  name: `${name}-imports-down`,
  comment: `src/${name}/ imports only from the floors below it: ${allowed.join(', ') || 'the ground'}`,
  severity: 'error',
  from: { path: `^src/${name}/` },
  to: { path: '^src/', pathNot: [`^src/${name}/`, '^src/[^/]+\\.ts$', '^src/net/', '^src/i18n/', ...allowed.map((f) => `^src/${f}/`)] },
});

module.exports = {
  forbidden: [
    {
      name: 'ground-knows-nothing-above',
      comment: 'src/*.ts and src/net/ know nothing of CNI, IPAM, the kernel floor or anything above',
      severity: 'error',
      from: { path: '^src/([^/]+\\.ts|net/|i18n/)', pathNot: '^src/main\\.ts$' },
      to: { path: '^src/', pathNot: ['^src/[^/]+\\.ts$', '^src/net/', '^src/i18n/', '^src/types\\.d\\.ts$'] },
    },
    floor('kernel', []),
    floor('cni', ['kernel']),
    floor('ipam', ['kernel', 'cni']),
    floor('plugin', ['kernel', 'cni', 'ipam']),
    {
      name: 'node-imports-down',
      comment: 'the node agent is not a CNI plugin: it imports the kernel floor, the ground, and of IPAM only the subnet file',
      severity: 'error',
      from: { path: '^src/node/' },
      to: {
        path: '^src/',
        pathNot: ['^src/node/', '^src/kernel/', '^src/[^/]+\\.ts$', '^src/net/', '^src/i18n/', '^src/ipam/subnet-file\\.ts$'],
      },
    },
    floor('explore', ['kernel', 'cni', 'ipam', 'plugin', 'node']),
    floor('lab', ['kernel', 'cni', 'ipam', 'plugin', 'node', 'explore']),
    floor('cli', ['kernel', 'cni', 'ipam', 'plugin', 'node', 'explore', 'lab']),
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.conflist$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
