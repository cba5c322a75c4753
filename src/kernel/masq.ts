// ipMasq: traffic from a pod to anywhere outside its subnet leaves with the node's address. Each pod gets
// its own nat chain, reached from POSTROUTING by a rule that carries the chain's name in a comment, so DEL
// removes exactly what its ADD added (iptables-restore applies each change atomically).
import { createHash } from 'node:crypto';
import { CniError, Code } from '../cni/errors.js';
import { run } from '../run.js';

export function masqChain(network: string, containerID: string, ifname: string): string {
  // iptables chain names are at most 28 characters.
  return 'PW-MASQ-' + createHash('sha256').update(`${network}\0${containerID}\0${ifname}`).digest('hex').slice(0, 16);
}

const tool = (v6: boolean) => (v6 ? 'ip6tables' : 'iptables');

async function restore(v6: boolean, rules: string[]): Promise<void> {
  const r = await run(`${tool(v6)}-restore`, ['--noflush', '--wait'], { input: ['*nat', ...rules, 'COMMIT', ''].join('\n') });
  if (r.code !== 0) throw new CniError(Code.Kernel, `${tool(v6)}-restore: ${r.stderr.trim()}`);
}

/** podIP without prefix, subnet in CIDR notation. */
export function addMasq(chain: string, podIP: string, subnet: string): Promise<void> {
  const v6 = podIP.includes(':');
  const host = v6 ? '/128' : '/32';
  const multicast = v6 ? 'ff00::/8' : '224.0.0.0/4';
  return restore(v6, [
    `:${chain} - [0:0]`,
    `-A ${chain} -d ${subnet} -j ACCEPT`,
    `-A ${chain} ! -d ${multicast} -j MASQUERADE`,
    `-A POSTROUTING -s ${podIP}${host} -m comment --comment "podwire: ${chain}" -j ${chain}`,
  ]);
}

/** Removes the chain and every POSTROUTING jump to it; nothing to remove is fine. */
export async function delMasq(chain: string, v6: boolean): Promise<void> {
  const saved = await run(`${tool(v6)}-save`, ['-t', 'nat']);
  if (saved.code !== 0) throw new CniError(Code.Kernel, `${tool(v6)}-save: ${saved.stderr.trim()}`);
  const lines = saved.stdout.split('\n');
  const jumps = lines.filter((l) => l.startsWith('-A POSTROUTING ') && l.endsWith(`-j ${chain}`)).map((l) => '-D' + l.slice(2));
  const exists = lines.includes(`:${chain} - [0:0]`) || lines.some((l) => l.startsWith(`:${chain} `));
  if (!jumps.length && !exists) return;
  await restore(v6, [...jumps, ...(exists ? [`-F ${chain}`, `-X ${chain}`] : [])]);
}
