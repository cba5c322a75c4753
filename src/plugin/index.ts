// The plugin role of the binary: which plugin the runtime executed, run in the CNI skeleton. main.ts loads
// this module only when CNI_COMMAND is set (and not VERSION, which main answers without loading anything).
import { runSkel } from '../cni/skel.js';
import { ipamPlugin } from './ipam.js';
import { bridgePlugin } from './bridge.js';

/** CNI_ARGS keys podwire reads; runtimes send others (K8S_POD_NAME, ...) with IgnoreUnknown=1. */
const KNOWN_ARGS = ['IP', 'MAC'] as const;

/** `name`: what the runtime executed ("podwire", or "podwire-ipam" for the standalone IPAM plugin). */
export function runPlugin(name: string): Promise<number> {
  return runSkel(name.startsWith('podwire-ipam') ? ipamPlugin : bridgePlugin, { knownArgs: KNOWN_ARGS });
}
