// What this machine has: the tools on PATH (and, for an agent in a container, on the host, where the
// plugin runs) and the kernel's release. A few stat calls, no process: cheap enough for the plugin.
import { sys } from '../runtime/files.js';

/** The directories of PATH holding an executable `name`. */
export function onPath(name: string, path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): boolean {
  return path.split(':').some((d) => d.startsWith('/') && sys().exists(`${d}/${name}`));
}

/**
 * Where the host's own tools are, when this process runs in a container (the agent): the plugin runs on
 * the host, so the host must have the chosen backend's tool too, not only the agent's image.
 */
let hostTools: string | undefined;
export function useHostTools(dir: string | undefined): void {
  hostTools = dir || undefined;
}
/** `name` is installed here and, for an agent in a container, on the host too. */
export const installed = (name: string): boolean => onPath(name) && (!hostTools || onPath(name, hostTools));

/** Whether a release ("6.1.0-18-amd64", "4.18.0-553.el8") is at least major.minor; undefined when it cannot be read. */
export function kernelAtLeast(rel: string, [major, minor]: readonly [number, number]): boolean | undefined {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  if (!m) return undefined;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}
