// What podwire has in a namespace's firewall, whichever backend holds it: iptables' and ip6tables' nat
// tables and nftables' table inet podwire, as one text. Tests that must hold on both backends ask it
// whether a hostPort leads to a pod and whether anything of a pod is left.
import { spawnSync } from 'node:child_process';

const out = (ns: string, cmd: string[]): string => {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
};

/** Without iptables-save's "# Generated/Completed on <time>" lines, so two reads compare by their rules. */
const rulesOnly = (text: string): string =>
  text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
export const iptablesNat = (ns: string): string =>
  rulesOnly(out(ns, ['iptables-save', '-t', 'nat']) + out(ns, ['ip6tables-save', '-t', 'nat']));
export const nftTable = (ns: string): string => out(ns, ['nft', 'list', 'table', 'inet', 'podwire']);
export const firewallText = (ns: string): string => iptablesNat(ns) + nftTable(ns);

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A hostPort leading to ip:port in either backend: a DNAT rule, or a map element. */
export function hostPortTo(text: string, hostPort: number, ip: string, port: number): boolean {
  const v6 = ip.includes(':');
  const ipt = new RegExp(`--dport ${hostPort} -j DNAT --to-destination ${esc(v6 ? `[${ip}]` : ip)}:${port}\\b`);
  const nft = new RegExp(`\\. ${hostPort} comment "[0-9a-f]{16}[^"]*" : ${esc(ip)} \\. ${port}\\b`);
  return ipt.test(text) || nft.test(text);
}

/** Anything of any pod: a per-pod chain, or an element naming an owner. */
export const PER_POD = /PW-(HP|MASQ)-[0-9a-f]{16}|comment "[0-9a-f]{16}[ "]/;
