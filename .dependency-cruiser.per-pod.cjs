// What the plugin loads per pod (from src/plugin/index.ts, everything it reaches) must earn its start-up
// cost (README, "The per-pod path"). Type-only imports load nothing, so they do not count here
// (tsPreCompilationDeps: false); the floors are checked with them in .dependency-cruiser.cjs.
module.exports = {
  forbidden: [
    {
      name: 'per-pod-path-loads-little',
      comment:
        'what the plugin loads per pod must earn its start-up cost: under Bun, node:fs costs 2.5-4 ms, node:child_process ~10 ms, ' +
        'node:crypto ~6 ms, node:path ~1 ms, pino ~30 ms, ip-num ~5 ms, yargs and the Kubernetes client more (README, "The per-pod path")',
      severity: 'error',
      from: { path: '^src/plugin/index\\.ts$' },
      to: {
        path: '^(node:)?(fs|path|child_process|crypto|os|http)$|node_modules/(pino|ip-num|yargs|@kubernetes|prom-client)',
        reachable: true,
      },
    },
    {
      name: 'no-catalogue-without-a-trace',
      comment:
        "the learner's catalogues (src/i18n) are loaded by a trace when it is written (dynamic import in cni/trace.ts), never " +
        'by a call that writes none: steps carry message ids, not words (kernel/step.ts)',
      severity: 'error',
      from: { path: '^src/(cni|plugin|ipam|kernel|net|runtime|firewall|nat|nodestate|guard)/' },
      to: { path: '^src/i18n/', dependencyTypesNot: ['dynamic-import'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.conflist$' },
    tsPreCompilationDeps: false,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
