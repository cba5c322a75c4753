// Test hosts for integration tests: network namespaces this test run makes, and removes again (also on
// failure). Nothing here touches the host's root namespace; all traffic stays inside these namespaces.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Attach, type Reply, execCni } from '../../src/lab/runtime.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'dist', 'podwire');
export const REF_PLUGINS = '/usr/lib/cni';

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('integration tests need root (they create network namespaces)');
}

let seq = 0;

/** Namespaces (and temp dirs) made by one test file; cleanup() removes all of them. */
export class Sandbox {
  private readonly namespaces: string[] = [];
  private readonly dirs: string[] = [];
  private readonly tag = `pwt${process.pid % 100000}`;

  ns(role: string): string {
    const name = `${this.tag}${role}${seq++}`;
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  dir(): string {
    const d = mkdtempSync(join(tmpdir(), 'podwire-test-'));
    this.dirs.push(d);
    return d;
  }

  delNs(name: string): void {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    this.namespaces.splice(this.namespaces.indexOf(name), 1);
  }

  cleanup(): void {
    for (const n of this.namespaces.splice(0).reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

export const nsPath = (ns: string): string => `/run/netns/${ns}`;

export interface CniCall extends Partial<Attach> {
  command: string;
  /** CNI_PATH; the reference plugins' directory by default. */
  path?: string;
}

export type CniReply = Reply;

/** Executes a plugin binary inside the node namespace exactly as a runtime does: CNI_* env, config on stdin. */
export function cni(nodeNs: string, call: CniCall, conf: unknown, bin = BIN): Promise<CniReply> {
  return execCni({ node: nodeNs, podwire: BIN, cniPath: (call.path ?? REF_PLUGINS).split(':') }, bin, call.command, call, conf);
}

/** Links in a namespace as `ip -j addr` reports them (name, flags, master, addresses). */
export function links(
  ns: string,
): { ifname: string; master?: string; mtu: number; address: string; flags: string[]; addr_info: { local: string; prefixlen: number }[] }[] {
  return JSON.parse(sh('ip', ['-n', ns, '-j', 'addr', 'show']));
}

export function linkNames(ns: string): string[] {
  return links(ns).map((l) => l.ifname);
}

/** One ping from inside a namespace (busybox's, installed everywhere the tests run). */
export function ping(fromNs: string, to: string): boolean {
  try {
    execFileSync('ip', ['netns', 'exec', fromNs, 'busybox', 'ping', '-c', '1', '-W', '2', to], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
