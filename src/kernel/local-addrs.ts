// The node's own addresses, read from /proc (files, no process): what a hostPort's hostIP must be one of.
// IPv4 from /proc/net/fib_trie (the local table's "/32 host LOCAL" leaves), IPv6 from /proc/net/if_inet6.
import { formatIP } from '../net/ip.js';
import { sys } from '../runtime/files.js';

/** Every address of this network namespace's interfaces, both families, as written by formatIP. */
export function localAddresses(): Set<string> {
  const out = new Set<string>();
  const trie = sys().readText('/proc/net/fib_trie') ?? '';
  // "  |-- 10.0.0.5\n     /32 host LOCAL": the address on the line before a "/32 host LOCAL".
  const lines = trie.split('\n');
  for (let i = 1; i < lines.length; i++) {
    if (lines[i]!.includes('/32 host LOCAL')) {
      const m = /([0-9.]+)\s*$/.exec(lines[i - 1]!);
      if (m) out.add(m[1]!);
    }
  }
  for (const l of (sys().readText('/proc/net/if_inet6') ?? '').split('\n')) {
    const hex = l.split(/\s+/)[0];
    if (!hex || hex.length !== 32) continue;
    out.add(formatIP({ family: 6, value: BigInt(`0x${hex}`) }));
  }
  return out;
}
