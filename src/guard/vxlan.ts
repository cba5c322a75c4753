// Only the cluster's nodes speak VXLAN to a node. The kernel's VTEP unwraps whatever reaches its UDP port,
// so a pod (a plain UDP socket, no privilege) or any host on the underlay could hand a node a frame with
// any inner source — past every check on pods' ports and every NetworkPolicy that trusts that source.
//
//   table inet podwire-vxlan
//     set nodes4, nodes6   the cluster's Node IPs (this node's included): written by node up from the
//                          cluster file, and by every peer sync (`peers sync`, the agent) from the node list
//     chain input    filter input: to the VXLAN port from an address not a node's -> drop (a pod sending
//                    to its own node's port is caught here: its source is its own, past the guard)
//     chain forward  filter forward: to a node's VXLAN port through this node -> drop (nodes speak to each
//                    other directly; this is a pod aiming at another node, which masquerade would
//                    otherwise make look like this node)
//
// Drops are counted (counter drop-vxlan) and logged, at most 10 a second, to the guard's log group with
// the prefix "podwire-guard vxlan: ". Pure lines; applied with one `nft -f -`.
import { type Family, familyOf, formatIP, parseIP } from '../net/ip.js';
import { run } from '../runtime/run.js';
import { GUARD_PREFIX, loggedDrop } from './table.js';

export const VXLAN_TABLE = 'inet podwire-vxlan';
const T = VXLAN_TABLE;
const kw = (f: Family) => (f === 4 ? 'ip' : 'ip6');

const drop = (why: string) => loggedDrop(`${GUARD_PREFIX} vxlan`, `counter name "drop-vxlan" drop comment "${why}"`);

/** The table for a VXLAN port, its node sets holding `nodeIPs` (both families mixed), written whole. */
export function vxlanScript(port: number, nodeIPs: readonly string[]): string[] {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`vxlan guard: port ${port} is not a UDP port`);
  const rules = (f: Family): [string, string][] => [
    ['input', `udp dport ${port} ${kw(f)} saddr != @nodes${f}`],
    ['forward', `udp dport ${port} ${kw(f)} daddr @nodes${f}`],
  ];
  return [
    `add table ${T} { comment "podwire: only the cluster's nodes reach the VXLAN port"; }`,
    `add set ${T} nodes4 { type ipv4_addr; comment "the cluster's Node IPs"; }`,
    `add set ${T} nodes6 { type ipv6_addr; comment "the cluster's Node IPs"; }`,
    `add counter ${T} drop-vxlan`,
    `add chain ${T} input { type filter hook input priority filter - 10; policy accept; }`,
    `add chain ${T} forward { type filter hook forward priority filter - 10; policy accept; }`,
    `flush chain ${T} input`,
    `flush chain ${T} forward`,
    ...([4, 6] as const).flatMap((f) =>
      rules(f).flatMap(([chain, match]) =>
        drop(chain === 'input' ? 'VXLAN from an address not a node' : "VXLAN to a node's port, not from a node").map(
          (d) => `add rule ${T} ${chain} ${match} ${d}`,
        ),
      ),
    ),
    ...nodeLines(nodeIPs),
  ];
}

/** The node sets' elements replaced, in one transaction with whatever goes with them. */
export function nodeLines(nodeIPs: readonly string[]): string[] {
  const out: string[] = [];
  for (const f of [4, 6] as const) {
    const ips = nodeIPs
      .filter((ip) => familyOf(ip) === f)
      .map((ip) => {
        const p = parseIP(ip);
        if (!p) throw new Error(`vxlan guard: ${JSON.stringify(ip)} is not an IP address`);
        return formatIP(p);
      });
    out.push(`flush set ${T} nodes${f}`);
    if (ips.length) out.push(`add element ${T} nodes${f} { ${[...new Set(ips)].join(', ')} }`);
  }
  return out;
}

/**
 * Keeps the node sets as the node list says: elements only (one process, no rules rewritten), the table
 * written whole when it is missing. Returns whether the table had to be written.
 */
export async function syncVxlanNodes(port: number, nodeIPs: readonly string[]): Promise<boolean> {
  const r = await run('nft', ['-f', '-'], { input: nodeLines(nodeIPs).join('\n') + '\n', label: 'nft -f - (vxlan nodes)' });
  if (r.code === 0) return false;
  if (!/No such file or directory/.test(r.stderr)) throw new Error(`nft (${T}): ${r.stderr.trim()}`);
  await writeVxlanTable(port, nodeIPs);
  return true;
}

/** Writes the table whole (node up): its rules replaced, its sets set to `nodeIPs`. */
export async function writeVxlanTable(port: number, nodeIPs: readonly string[]): Promise<void> {
  const r = await run('nft', ['-f', '-'], { input: vxlanScript(port, nodeIPs).join('\n') + '\n', label: 'nft -f - (vxlan)' });
  if (r.code !== 0) throw new Error(`nft (${T}): ${r.stderr.trim()}`);
}

/** Removes the table (node down, or a backend without VXLAN); true if it was there. */
export async function removeVxlanTable(): Promise<boolean> {
  return (await run('nft', ['delete', 'table', ...T.split(' ')])).code === 0;
}
