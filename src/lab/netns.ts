// The lab's namespaces: all named LAB_PREFIX*, so they can be found and removed whatever state a run
// (or a crash) left them in. Nothing here sends traffic outside them.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

export const LAB_PREFIX = 'pwlab-';
export const LAB_STATE = '/run/podwire-lab';

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function labNamespaces(): string[] {
  return ip('netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(LAB_PREFIX));
}

export function labDown(): void {
  for (const ns of labNamespaces()) {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
  rmSync(LAB_STATE, { recursive: true, force: true });
}

/** One ping from inside a namespace (busybox: Debian has no separate ping here). */
export function ping(fromNs: string, to: string): boolean {
  try {
    execFileSync('ip', ['netns', 'exec', fromNs, 'busybox', 'ping', '-c', '1', '-W', '2', to], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

