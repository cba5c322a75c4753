// ipMasq: traffic from a pod to anywhere outside its subnet leaves with the node's address. Each pod gets
// its own nat chain, reached from POSTROUTING by a rule that carries the chain's name in a comment, so DEL
// removes exactly what its ADD added (src/nat/chains.ts; iptables-restore applies each change atomically).
import { familyOf } from '../net/ip.js';
import type { Step } from '../kernel/step.js';
import { natCommands, restoreNat } from './chains.js';

/** podIP without prefix, subnet in CIDR notation. Returns the lines applied. */
export async function addMasq(chain: string, podIP: string, subnet: string): Promise<string[]> {
  const v6 = familyOf(podIP) === 6;
  const host = v6 ? '/128' : '/32';
  const multicast = v6 ? 'ff00::/8' : '224.0.0.0/4';
  const lines = [
    `:${chain} - [0:0]`,
    `-A ${chain} -d ${subnet} -j ACCEPT`,
    `-A ${chain} ! -d ${multicast} -j MASQUERADE`,
    `-A POSTROUTING -s ${podIP}${host} -m comment --comment "podwire: ${chain}" -j ${chain}`,
  ];
  await restoreNat(v6, lines);
  return lines;
}

/** The trace's account of addMasq. */
export const masqStep = (podIP: string, subnet: string, lines: string[]): Step => ({
  id: 'masq',
  p: { podIP, subnet },
  cmd: natCommands(familyOf(podIP) === 6, lines),
});
