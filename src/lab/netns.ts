// The lab's namespaces: all named LAB_PREFIX*, so they can be found and removed whatever state a run
// (or a crash) left them in. Nothing here sends traffic outside them.
import { t } from '../i18n/index.js';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import type { Scope } from '../explore/world.js';
import { namedNamespaces } from '../kernel/state.js';
import { run } from '../runtime/run.js';

export const LAB_PREFIX = 'pwlab-';
export const LAB_STATE = '/run/podwire-lab';

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Creates a lab namespace (every one is named LAB_PREFIX*: labDown() finds them all) with lo up. Its links
 * skip IPv6 duplicate address detection: the lab makes every link a moment before it is used, and until
 * DAD has passed on a link's link-local address the kernel sends no neighbour solicitation for a packet
 * it forwards (host-gw traffic would be lost for the first second). A real node's uplink has been up for
 * long; the lab's addresses are its own.
 */
export function netns(name: string): string {
  ip('netns', 'add', name);
  ip('-n', name, 'link', 'set', 'lo', 'up');
  execFileSync('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
  return name;
}

export const labNamespaces = (): string[] => namedNamespaces().filter((n) => n.startsWith(LAB_PREFIX));

/** The lab, for explore (status, path, diagram): its namespaces, called by their names without the prefix. */
export const labScope = (): Scope => ({
  namespaces: labNamespaces(),
  name: (ns) => (ns.startsWith(LAB_PREFIX) ? ns.slice(LAB_PREFIX.length) : ns),
  what: t('scope.lab'),
});

/** Deletes a namespace, and first the processes the lab started in it (web servers in pods would outlive it). */
export function delNetns(ns: string): void {
  if (!existsSync(`/run/netns/${ns}`)) return; // gone already (a test may delete a pod's namespace itself)
  for (const pid of ip('netns', 'pids', ns).split('\n').filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

export function labDown(): void {
  for (const ns of labNamespaces()) delNetns(ns);
  rmSync(LAB_STATE, { recursive: true, force: true });
}

/** Runs a command inside a namespace. */
export const inNs = (ns: string, cmd: string, args: readonly string[], input?: string) =>
  run('ip', ['netns', 'exec', ns, cmd, ...args], { input });

/**
 * One ping, without blocking the event loop, so many run side by side. With `size`, iputils' ping sends
 * that many payload bytes with Don't Fragment set: it fails rather than fragment (a path MTU proof).
 */
export async function pingAsync(fromNs: string, to: string, size?: number): Promise<boolean> {
  const args =
    size === undefined
      ? ['busybox', 'ping', '-c', '1', '-W', '2', to]
      : ['ping', '-n', '-c', '1', '-W', '2', '-M', 'do', '-s', String(size), to];
  return (await inNs(fromNs, args[0]!, args.slice(1))).code === 0;
}

/** An HTTP GET through busybox nc from inside a namespace (busybox wget crashes on these machines); '' on failure. */
export async function httpGet(fromNs: string, host: string, port: number, path = '/index.html'): Promise<string> {
  const r = await inNs(fromNs, 'busybox', ['timeout', '5', 'busybox', 'nc', host, String(port)], `GET ${path} HTTP/1.0\r\n\r\n`);
  return r.code === 0 ? r.stdout : '';
}

/** Maps over items with at most `limit` promises in flight. */
export async function pool<T, R>(items: readonly T[], limit: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
