// One binary, two roles: a CNI plugin when the runtime sets CNI_COMMAND, the podwire CLI otherwise.
// Installed (or linked) as "podwire-ipam" it is the standalone IPAM plugin.
// The CLI (yargs and friends) is imported only on the CLI path: the plugin runs once per pod and its
// start-up is most of its cost.
import { basename } from 'node:path';
import { runSkel } from './cni/skel.js';
import { ipamPlugin } from './ipam/plugin.js';
import { bridgePlugin } from './plugin/bridge.js';

/** CNI_ARGS keys podwire reads; runtimes send others (K8S_POD_NAME, ...) with IgnoreUnknown=1. */
const KNOWN_ARGS = ['IP', 'MAC'] as const;

function invokedAs(): string {
  // argv0 is the path the runtime executed (a link keeps its own name); execPath is the resolved binary.
  const names = [process.argv0, process.argv[1] ?? '', process.execPath].map((p) => basename(p));
  return names.find((n) => n.startsWith('podwire')) ?? 'podwire';
}

async function main(): Promise<number> {
  if (process.env.CNI_COMMAND) {
    const plugin = invokedAs().startsWith('podwire-ipam') ? ipamPlugin : bridgePlugin;
    return runSkel(plugin, { knownArgs: KNOWN_ARGS });
  }
  const { cli } = await import('./cli/index.js');
  return cli(process.argv.slice(2));
}

// No top-level await: Bun's --bytecode compilation does not support it.
main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`podwire: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
