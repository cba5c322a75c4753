// The house (docs/architecture.md): floors, ground up, and imports only go down or stay on their floor.
// A folder is a floor (kernel/, cni/, ipam/, plugin/, node/, explore/, lab/, cli/) or a room: a feature a
// newcomer finds by its name, whose files stand on the floors of what they do —
//   firewall/   where the node's and pods' rules go (choose.ts: the one choice), the nftables table, the
//               iptables node chains, and the interface a pod's rules go through (backend.ts)   kernel
//   nat/        hostPorts and masquerade: iptables chains (kernel), a pod's rules from its call (pod.ts:
//               plugin), reading NAT back for `path` (walk-*.ts: explore)
//   policy/     NetworkPolicy: model, compiler, enforcer, informers (node), its explanations (explain.ts:
//               explore), upstream's truth tables in the lab (lab.ts: lab), the gate that holds a new pod
//               until the agent has placed it (gate.ts: kernel, the plugin writes to it)
//   nodestate/  every file beside the subnet file, typed, read and written in one place (state)
//   guard/      a pod is only itself: its MAC and addresses bound to its port, every frame checked where it
//               enters the node (table.ts: kernel; ADD, DEL and GC write it), and only nodes reach the VXLAN
//               port (vxlan.ts: kernel; node up and peer syncs write it)
//   drops/      every packet podwire drops, seen: the log group read with ulogd2 (ulogd.ts: kernel), each
//               drop explained with its pod and policies (drop.ts: node); `podwire drops`, the agent's /drops
//   web/        `podwire web`: the live page (page.ts) and its local server (server.ts), on the explore
//               code: explore
// `npm test` runs this check (npm run check), and .dependency-cruiser.per-pod.cjs beside it. Type-only
// imports count too.
const FLOORS = {
  ground: ['^src/runtime/', '^src/net/', '^src/i18n/', '^src/types\\.d\\.ts$'],
  state: ['^src/nodestate/'],
  kernel: [
    '^src/kernel/',
    '^src/firewall/',
    '^src/nat/(chains|hostport|masq)\\.ts$',
    '^src/policy/gate\\.ts$',
    '^src/guard/(table|vxlan)\\.ts$',
    '^src/drops/ulogd\\.ts$',
  ],
  cni: ['^src/cni/'],
  ipam: ['^src/ipam/'],
  plugin: ['^src/plugin/', '^src/nat/pod\\.ts$'],
  node: ['^src/node/', '^src/policy/(model|compile|enforce|watch)\\.ts$', '^src/drops/drop\\.ts$'],
  explore: ['^src/explore/', '^src/nat/walk-[^/]+\\.ts$', '^src/policy/explain\\.ts$', '^src/web/'],
  lab: ['^src/lab/', '^src/policy/lab\\.ts$'],
  cli: ['^src/cli/'],
};
/** What each floor may import besides itself. The node agent is no CNI plugin: it stands beside one. */
const BELOW = {
  ground: [],
  state: ['ground'],
  kernel: ['ground'],
  cni: ['ground', 'kernel'],
  ipam: ['ground', 'state', 'kernel', 'cni'],
  plugin: ['ground', 'state', 'kernel', 'cni', 'ipam'],
  node: ['ground', 'state', 'kernel'],
  explore: ['ground', 'state', 'kernel', 'cni', 'ipam', 'plugin', 'node'],
  lab: ['ground', 'state', 'kernel', 'cni', 'ipam', 'plugin', 'node', 'explore'],
  cli: ['ground', 'state', 'kernel', 'cni', 'ipam', 'plugin', 'node', 'explore', 'lab'],
};

const floorRule = (name) => ({
  name: `${name}-imports-down`,
  comment: `the ${name} floor (${FLOORS[name].join(' ')}) imports only from: ${BELOW[name].join(', ') || 'itself'}`,
  severity: 'error',
  from: { path: FLOORS[name] },
  to: { path: '^src/', pathNot: [...FLOORS[name], ...BELOW[name].flatMap((f) => FLOORS[f])] },
});

module.exports = {
  forbidden: [
    ...Object.keys(FLOORS).map(floorRule),
    {
      name: 'every-file-has-a-floor',
      comment: 'a file in src/ that no floor names: give its folder (or its room file) a floor above',
      severity: 'error',
      from: { path: '^src/', pathNot: [...Object.values(FLOORS).flat(), '^src/main\\.ts$'] },
      to: {},
    },
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
