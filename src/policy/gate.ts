// The gate: closed from a pod's first packet. While NetworkPolicies are enforced on a node, every new pod
// is held — nothing forwarded to or from it — until the agent has seen it and placed its address in the
// policy table's sets; a reused address therefore never inherits the old pod's memberships, and a pod
// started while the agent lags, restarts or is gone stays closed (fail closed, as Calico holds a workload
// until Felix has programmed it). Traffic between a pod and its own node (kubelet's probes) is not
// forwarded and is never held.
//
//   table inet podwire-gate          the agent makes it while it enforces policies, and removes it with them
//     sets pending4, pending6        the plugin's ADD adds the pod's addresses (before the pod has any, so
//                                    its first packet meets them); the agent removes each once it has placed
//                                    it; the pod's DEL removes them too
//     chain hold                     filter forward, before the policy table: a pending address, either
//                                    way -> drop
//
// The agent never rewrites this table whole (that would release every held pod): only elements change.
// Pure lines here, applied with one `nft -f -` (kernel floor: the plugin uses it, and loads it only when
// the node's gate is up).
import { type Family, familyOf } from '../net/ip.js';
import { run } from '../runtime/run.js';
import { loggedDrop } from '../guard/table.js';

/** The log prefix of a packet held at the gate: "podwire-gate from: " / "podwire-gate to: " (podwire drops). */
export const GATE_PREFIX = 'podwire-gate';

export const GATE_TABLE = 'inet podwire-gate';
const T = GATE_TABLE;
const kw = (f: Family) => (f === 4 ? 'ip' : 'ip6');

/** The table, created if missing, with its elements kept (`add` of what exists changes nothing). */
export function gateScript(): string[] {
  return [
    `add table ${T} { comment "podwire: new pods held until the agent has placed them (NetworkPolicy)"; }`,
    `add set ${T} pending4 { type ipv4_addr; comment "pods not yet placed by the agent"; }`,
    `add set ${T} pending6 { type ipv6_addr; comment "pods not yet placed by the agent"; }`,
    `add chain ${T} hold { type filter hook forward priority filter - 10; policy accept; }`,
    `flush chain ${T} hold`,
    ...([4, 6] as const).flatMap((f) => [
      ...loggedDrop(`${GATE_PREFIX} from`, 'counter drop comment "from a pod the agent has not placed yet"').map(
        (r) => `add rule ${T} hold ${kw(f)} saddr @pending${f} ${r}`,
      ),
      ...loggedDrop(`${GATE_PREFIX} to`, 'counter drop comment "to a pod the agent has not placed yet"').map(
        (r) => `add rule ${T} hold ${kw(f)} daddr @pending${f} ${r}`,
      ),
    ]),
  ];
}

const elements = (verb: 'add' | 'delete', ips: readonly string[]): string[] =>
  ips.map((ip) => `${verb} element ${T} pending${familyOf(ip)} { ${ip} }`);

/** Holds these addresses (a new pod's). */
export const holdLines = (ips: readonly string[]): string[] => elements('add', ips);

/** Releases these addresses, whether or not they are held: each is added, then deleted, in one transaction. */
export const releaseLines = (ips: readonly string[]): string[] => [...elements('add', ips), ...elements('delete', ips)];

/**
 * Applies gate lines with one `nft -f -`; false when the gate is not there (no policy is enforced on this
 * node: nothing to hold). Any other failure is thrown.
 */
export async function gateApply(lines: readonly string[]): Promise<boolean> {
  if (!lines.length) return true;
  const r = await run('nft', ['-f', '-'], { input: lines.join('\n') + '\n', label: 'nft -f - (gate)' });
  if (r.code === 0) return true;
  if (/No such file or directory/.test(r.stderr)) return false;
  throw new Error(`nft (${T}): ${r.stderr.split('\n').find((l) => l.includes('Error')) ?? r.stderr.trim()}`);
}
