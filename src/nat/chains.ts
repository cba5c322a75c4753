// Per-pod nat chains (masquerade, hostPort): added with one iptables-restore --noflush (atomic), and
// removed the same way — every rule that jumps to the chain or carries its name in a comment, then the
// chain itself — so DEL removes exactly what its ADD added, found from the live table.
import { commandFailed } from '../kernel/errors.js';
import { iptablesCmd } from '../firewall/iptables.js';
import { run } from '../runtime/run.js';
import type { PodRules, PortMapping } from '../firewall/rules.js';

const tool = (v6: boolean) => (v6 ? 'ip6tables' : 'iptables');
const cmd = (v6: boolean, suffix: '' | '-save' | '-restore') => iptablesCmd(tool(v6), suffix);

export async function restoreNat(v6: boolean, rules: string[]): Promise<void> {
  const r = await run(cmd(v6, '-restore'), ['--noflush', '--wait'], { input: ['*nat', ...rules, 'COMMIT', ''].join('\n') });
  if (r.code !== 0) throw commandFailed(`${tool(v6)}-restore`, r.stderr);
}

export async function saveNat(v6: boolean): Promise<string[]> {
  const saved = await run(cmd(v6, '-save'), ['-t', 'nat']);
  if (saved.code !== 0) throw commandFailed(`${tool(v6)}-save`, saved.stderr);
  return saved.stdout.split('\n');
}

/**
 * The nat table as iptables-save prints it, in the namespace `ns` (a name under /run/netns) or here, for
 * the readers that explain (path, the pictures): '' where there is none, or no iptables at all.
 */
export async function readNat(v6: boolean, ns?: string): Promise<string> {
  try {
    const r = await (ns ? run('ip', ['netns', 'exec', ns, cmd(v6, '-save'), '-t', 'nat']) : run(cmd(v6, '-save'), ['-t', 'nat']));
    return r.code === 0 ? r.stdout : '';
  } catch {
    return ''; // not installed: an nftables-only node
  }
}

/** The lines that remove a chain and every rule pointing at it or naming it; pure, from iptables-save. */
export function delChainLines(saved: readonly string[], chain: string): string[] {
  const refs = saved
    .filter((l) => l.startsWith('-A ') && !l.startsWith(`-A ${chain} `) && (l.endsWith(`-j ${chain}`) || l.includes(`"podwire: ${chain}"`)))
    .map((l) => '-D' + l.slice(2));
  const exists = saved.some((l) => l.startsWith(`:${chain} `));
  return [...refs, ...(exists ? [`-F ${chain}`, `-X ${chain}`] : [])];
}

/**
 * Removes the chains and everything that refers to them, with one save and one restore; nothing to remove
 * is fine. Returns the lines applied.
 */
export async function delChains(chains: readonly string[], v6: boolean): Promise<string[]> {
  if (!chains.length) return [];
  const saved = await saveNat(v6);
  const lines = chains.flatMap((c) => delChainLines(saved, c));
  if (lines.length) await restoreNat(v6, lines);
  return lines;
}

/**
 * Removes a group of chains that may jump to each other (a whole backend's): the rules elsewhere that point
 * at them, then every chain flushed, then every chain deleted — so no chain is deleted while another of the
 * group still jumps to it. One save and one restore.
 */
export async function delChainGroup(chains: readonly string[], v6: boolean): Promise<string[]> {
  const saved = await saveNat(v6);
  const group = new Set(chains.filter((c) => saved.some((l) => l.startsWith(`:${c} `))));
  if (!group.size) return [];
  const refs = saved.filter((l) => {
    if (!l.startsWith('-A ')) return false;
    if (group.has(l.slice(3, l.indexOf(' ', 3)))) return false;
    return [...group].some((c) => l.endsWith(`-j ${c}`) || l.includes(`"podwire: ${c}"`));
  });
  const lines = [...refs.map((l) => '-D' + l.slice(2)), ...[...group].map((c) => `-F ${c}`), ...[...group].map((c) => `-X ${c}`)];
  await restoreNat(v6, lines);
  return lines;
}

/** iptables-restore lines as the single iptables commands that do the same (for the trace). */
export function natCommands(v6: boolean, lines: readonly string[]): string {
  const t = `${tool(v6)} -t nat`;
  return lines.map((l) => (l.startsWith(':') ? `${t} -N ${l.slice(1).split(' ')[0]}` : `${t} ${l}`)).join('\n');
}

/**
 * Each attachment's rules as iptables-save -t nat shows them (pure): its PW-HP-<owner> chain's DNATs, the
 * hairpin masquerade naming that chain (which gives the subnet), and its PW-MASQ-<owner> chain. For moving
 * a node's pods to the other backend.
 */
export function podRulesFromSave(saved: readonly string[]): PodRules[] {
  const pods = new Map<string, PodRules>();
  const get = (owner: string, ip: string): PodRules => {
    const key = `${owner} ${ip}`;
    let p = pods.get(key);
    if (!p) pods.set(key, (p = { owner, ip, subnet: '', masq: false, mappings: [] }));
    return p;
  };
  const bare = (s: string) => s.replace(/^\[|\]$/g, '').replace(/\/(32|128)$/, '');
  const subnets = new Map<string, string>();
  for (const l of saved) {
    const dnat =
      /^-A PW-HP-([0-9a-f]{16})(?: -d (\S+))? -p (tcp|udp) .*--dport (\d+) -j DNAT --to-destination (\[[^\]]+\]|[\d.]+):(\d+)$/.exec(l);
    if (dnat) {
      const m: PortMapping = { hostPort: Number(dnat[4]), containerPort: Number(dnat[6]), protocol: dnat[3] as 'tcp' | 'udp' };
      if (dnat[2]) m.hostIP = bare(dnat[2]);
      get(dnat[1]!, bare(dnat[5]!)).mappings.push(m);
      continue;
    }
    const hairpin = /^-A \S+ -s (\S+) -d (\S+) .*"podwire: PW-HP-([0-9a-f]{16})"/.exec(l);
    if (hairpin) subnets.set(`${hairpin[3]} ${bare(hairpin[2]!)}`, hairpin[1]!);
    const masq = /^-A POSTROUTING -s (\S+) .*"podwire: PW-MASQ-([0-9a-f]{16})"/.exec(l);
    if (masq) get(masq[2]!, bare(masq[1]!)).masq = true;
    const own = /^-A PW-MASQ-([0-9a-f]{16}) -d (\S+) -j ACCEPT$/.exec(l);
    if (own) subnets.set(`${own[1]} masq`, own[2]!);
  }
  for (const p of pods.values()) p.subnet = subnets.get(`${p.owner} ${p.ip}`) ?? subnets.get(`${p.owner} masq`) ?? '';
  return [...pods.values()];
}
