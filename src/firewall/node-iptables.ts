// The node's iptables rules, in podwire's own chains so they can be checked, replaced and removed as a
// whole without touching anyone else's rules:
//   filter PODWIRE-FORWARD      (from FORWARD)      accept pod traffic: Docker and many firewalls set the
//                                                   FORWARD policy to DROP, which would cut pods off;
//                                                   its jump goes after kube-proxy's, before any other
//   nat    PODWIRE-POSTROUTING  (from POSTROUTING)  masquerade pods' traffic leaving the cluster network,
//                                                   but not packets kube-proxy marked (0x4000/0x4000):
//                                                   its KUBE-POSTROUTING masquerades those itself
//   filter PODWIRE-OUTPUT       (from OUTPUT)       no ICMP redirect to a pod (pod to pod goes through
//                                                   the node: node/setup.ts podsViaNode)
// Rules are written in iptables-save's own format, so comparing them with `iptables-save` output tells
// whether anything must change; a second `node up` then starts one process per family and changes
// nothing. IPv6 gets the same chains through ip6tables.
import { commandFailed } from '../kernel/errors.js';
import { iptablesCmd } from './iptables.js';
import { run } from '../runtime/run.js';

export const FORWARD_CHAIN = 'PODWIRE-FORWARD';
export const NAT_CHAIN = 'PODWIRE-POSTROUTING';
export const OUTPUT_CHAIN = 'PODWIRE-OUTPUT';
const COMMENT = '-m comment --comment "podwire: pod network"';

/** podwire's chains and the built-in chain each is reached from. */
const CHAINS = [
  { table: 'filter', chain: FORWARD_CHAIN, from: 'FORWARD' },
  { table: 'nat', chain: NAT_CHAIN, from: 'POSTROUTING' },
  { table: 'filter', chain: OUTPUT_CHAIN, from: 'OUTPUT' },
] as const;

type Family = 4 | 6;
const MULTICAST = { 4: '224.0.0.0/4', 6: 'ff00::/8' } as const;
const tool = (f: Family) => (f === 4 ? 'iptables' : 'ip6tables');

export function nodeRules(clusterCIDR: string, family: Family = 4): ((typeof CHAINS)[number] & { rules: string[] })[] {
  const [forward, nat, output] = CHAINS;
  return [
    { ...forward, rules: [`-s ${clusterCIDR} -j ACCEPT`, `-d ${clusterCIDR} -j ACCEPT`] },
    {
      ...nat,
      rules: [
        '-m mark --mark 0x4000/0x4000 -j RETURN',
        `-s ${clusterCIDR} -d ${clusterCIDR} -j RETURN`,
        `-s ${clusterCIDR} ! -d ${MULTICAST[family]} -j MASQUERADE --random-fully`,
      ],
    },
    // No ICMP redirect to a pod: its packets to a neighbour on the bridge must keep going through the node
    // (pods route their subnet via the node; node/setup.ts podsViaNode).
    {
      ...output,
      rules: [
        family === 4
          ? `-d ${clusterCIDR} -p icmp -m icmp --icmp-type 5 -j DROP`
          : `-d ${clusterCIDR} -p ipv6-icmp -m icmp6 --icmpv6-type 137 -j DROP`,
      ],
    },
  ];
}

interface Saved {
  /** Per table: rule lines of each chain ("-A CHAIN ..." with the prefix removed), chains declared. */
  rules: Map<string, string[]>;
  chains: Set<string>;
  /** Built-in chains' policies. */
  policies: Map<string, string>;
}

function parseSave(text: string): Map<string, Saved> {
  const tables = new Map<string, Saved>();
  let cur: Saved | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) tables.set(line.slice(1), (cur = { rules: new Map(), chains: new Set(), policies: new Map() }));
    else if (cur && line.startsWith(':')) {
      const [chain = '', policy = '-'] = line.slice(1).split(' ');
      cur.chains.add(chain);
      if (policy !== '-') cur.policies.set(chain, policy);
    } else if (cur && line.startsWith('-A ')) {
      const sp = line.indexOf(' ', 3);
      const chain = line.slice(3, sp);
      cur.rules.set(chain, [...(cur.rules.get(chain) ?? []), line.slice(sp + 1)]);
    }
  }
  return tables;
}

async function save(f: Family = 4): Promise<Map<string, Saved>> {
  const r = await run(iptablesCmd(tool(f), '-save'), []);
  if (r.code !== 0) throw commandFailed(`${tool(f)}-save`, r.stderr);
  return parseSave(r.stdout);
}

async function restore(lines: string[], f: Family = 4): Promise<void> {
  const r = await run(iptablesCmd(tool(f), '-restore'), ['--noflush', '--wait'], { input: lines.join('\n') + '\n' });
  if (r.code !== 0) throw commandFailed(`${tool(f)}-restore`, r.stderr);
}

const jumpsTo = (s: Saved | undefined, from: string, chain: string): string[] =>
  (s?.rules.get(from) ?? []).filter((r) => r.endsWith(`-j ${chain}`));

/**
 * Where podwire's jump belongs in a built-in chain, 0-based among the chain's other rules: in FORWARD
 * right after kube-proxy's jumps (KUBE-PROXY-FIREWALL, KUBE-FORWARD, KUBE-SERVICES, ...: its
 * load-balancer source ranges, its drop of conntrack-INVALID packets and its reject for a Service without
 * endpoints must judge pod traffic before podwire accepts it), and before anything else — a DROP or
 * REJECT someone appended must not come first; elsewhere last. `at`: where it is now (-1: missing or twice).
 */
function jumpPlace(s: Saved | undefined, from: string, chain: string): { want: number; at: number; others: string[] } {
  const rules = s?.rules.get(from) ?? [];
  const ours = (r: string) => r.endsWith(`-j ${chain}`);
  const others = rules.filter((r) => !ours(r));
  let want = others.length;
  if (from === 'FORWARD') {
    want = 0;
    others.forEach((r, i) => {
      if (/-j KUBE-\S+$/.test(r)) want = i + 1;
    });
  }
  const mine = rules.flatMap((r, i) => (ours(r) ? [i] : []));
  return { want, at: mine.length === 1 ? mine[0]! : -1, others };
}

/** Makes podwire's chains and the jumps to them exactly as nodeRules says, per family; returns what it changed. */
export async function ensureNodeRules(nets: readonly { family: Family; clusterCIDR: string }[]): Promise<string[]> {
  const changed = await Promise.all(nets.map((n) => ensureFamilyRules(n.clusterCIDR, n.family)));
  return changed.flat();
}

async function ensureFamilyRules(clusterCIDR: string, family: Family): Promise<string[]> {
  const saved = await save(family);
  const out: string[] = [];
  const changed: string[] = [];
  for (const t of nodeRules(clusterCIDR, family)) {
    const s = saved.get(t.table);
    const have = s?.rules.get(t.chain) ?? [];
    const jumps = jumpsTo(s, t.from, t.chain);
    const want = `${COMMENT} -j ${t.chain}`;
    const place = jumpPlace(s, t.from, t.chain);
    const rulesOk = s?.chains.has(t.chain) && have.join('\n') === t.rules.join('\n');
    const jumpOk = jumps.length === 1 && jumps[0] === want && place.at === place.want;
    if (rulesOk && jumpOk) continue;
    changed.push(`${tool(family)} ${t.table} ${t.chain}`);
    out.push(`*${t.table}`);
    if (!rulesOk) out.push(`:${t.chain} - [0:0]`, ...t.rules.map((r) => `-A ${t.chain} ${r}`)); // declaring flushes it
    if (!jumpOk) {
      out.push(...jumps.map((j) => `-D ${t.from} ${j}`));
      // After kube-proxy's verdicts, before anyone else's (jumpPlace); positions count the other rules.
      out.push(place.want < place.others.length ? `-I ${t.from} ${place.want + 1} ${want}` : `-A ${t.from} ${want}`);
    }
    out.push('COMMIT');
  }
  if (out.length) await restore(out, family);
  return changed;
}

/** What FORWARD does with pod traffic: its policy, and whether podwire's chain (complete, in its place) accepts it. */
export async function forwardState(clusterCIDR: string, family: Family = 4): Promise<{ policy: string; ours: boolean; accepted: boolean }> {
  const s = (await save(family)).get('filter');
  const [t] = nodeRules(clusterCIDR, family);
  const place = jumpPlace(s, t!.from, t!.chain);
  const ours = !!s?.chains.has(t!.chain) && (s.rules.get(t!.chain) ?? []).join('\n') === t!.rules.join('\n') && place.at === place.want;
  const policy = s?.policies.get('FORWARD') ?? 'ACCEPT';
  return { policy, ours, accepted: ours || policy === 'ACCEPT' };
}

/** Removes podwire's chains and every jump to them, per family; nothing to remove is fine. */
export async function removeNodeRules(families: readonly Family[] = [4]): Promise<string[]> {
  return (await Promise.all(families.map(removeFamilyRules))).flat();
}

async function removeFamilyRules(family: Family): Promise<string[]> {
  const saved = await save(family);
  const out: string[] = [];
  const removed: string[] = [];
  for (const t of CHAINS) {
    const s = saved.get(t.table);
    const jumps = jumpsTo(s, t.from, t.chain);
    if (!jumps.length && !s?.chains.has(t.chain)) continue;
    removed.push(`${tool(family)} ${t.table} ${t.chain}`);
    out.push(`*${t.table}`, ...jumps.map((j) => `-D ${t.from} ${j}`));
    if (s?.chains.has(t.chain)) out.push(`-F ${t.chain}`, `-X ${t.chain}`);
    out.push('COMMIT');
  }
  if (out.length) await restore(out, family);
  return removed;
}

/** podwire's chains in iptables (node's and pods'), per family: what a switch to nftables must leave none of. */
export async function podwireIptablesChains(families: readonly Family[]): Promise<string[]> {
  const out: string[] = [];
  for (const f of families) {
    const saved = await save(f).catch(() => undefined);
    for (const [table, s] of saved ?? []) {
      for (const c of s.chains) if (/^(PODWIRE-|PW-(HP|MASQ)-)/.test(c)) out.push(`${f === 6 ? 'ip6tables ' : ''}${table} ${c}`);
    }
  }
  return out;
}
