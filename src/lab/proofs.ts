// What the lab proves, measured from inside its namespaces (no traffic leaves them):
//   - every pod reaches every other pod, across nodes, by its Pod IP (no NAT on the way);
//   - every node reaches the pods of the other nodes;
//   - a packet of the full pod MTU with Don't Fragment set crosses between every pair of nodes, and one
//     byte more is refused (so the MTU really is the pod's, not something smaller on the way);
//   - how it travelled: counters on each node's underlay interface count VXLAN packets (UDP to the VXLAN
//     port) and plain pod packets (pod to pod addresses, unencapsulated). VXLAN peers must show the first,
//     host-gw peers the second, and never the other kind.
// Each proof runs once per family of the lab (a dual-stack lab proves IPv4 and IPv6 side by side); IPv6's
// groups are named so ("pod to pod (IPv6)"). The counters are iptables rules (ip6tables for IPv6) where
// iptables is installed, else a table of the lab's own in nftables: a host with nft and no iptables binary
// runs the whole lab.
import { readSubnetFile } from '../nodestate/subnet-file.js';
import { run } from '../runtime/run.js';
import type { MessageId } from '../i18n/index.js';
import { onPath } from '../kernel/tools.js';
import type { Family } from '../node/cluster.js';
import { type Lab, type LabNode, PLANS } from './lab.js';
import { inNs, pingAsync, pool } from './netns.js';

/** A proof the lab makes: an id of the catalogues' `proof.<id>` (put into words where a table is printed). */
export type ProofId = { [K in MessageId]: K extends `proof.${infer P}` ? P : never }[MessageId];

export interface Check {
  proof: ProofId;
  /** The family it was made in (a dual-stack lab makes each proof twice). */
  family: Family;
  from: string;
  to: string;
  expect: boolean;
  ok: boolean;
}

export interface Counters {
  node: string;
  family: Family;
  vxlan: number;
  plain: number;
  /** What the node's peers use in this family, from `peers sync`. */
  modes: Set<string>;
}

const tables = (f: Family) => (f === 4 ? 'iptables' : 'ip6tables');

const COUNT_CHAIN = 'PWLAB-COUNT';
const COUNT_TABLE = 'pwlab-count';
/** Which tool counts: iptables where it is installed (the rules the lab always used), nftables otherwise. */
const counting = (): 'iptables' | 'nftables' => (onPath('iptables-restore') ? 'iptables' : 'nftables');

/**
 * The same counters in nftables: one table of the lab's own (inet, both families), a chain at mangle's
 * priority on the postrouting hook, rules marked by a comment of what and which family.
 */
function nftCounters(vxlanPort: number, f: Family): string {
  const [proto, ip] = f === 4 ? ['ipv4', 'ip'] : ['ipv6', 'ip6'];
  const cluster = PLANS[f].clusterCIDR;
  return [
    `add table inet ${COUNT_TABLE}`,
    `add chain inet ${COUNT_TABLE} postrouting { type filter hook postrouting priority mangle; policy accept; }`,
    `add rule inet ${COUNT_TABLE} postrouting meta nfproto ${proto} oifname "eth0" udp dport ${vxlanPort} counter comment "vxlan${f}"`,
    `add rule inet ${COUNT_TABLE} postrouting oifname "eth0" ${ip} saddr ${cluster} ${ip} daddr ${cluster} counter comment "plain${f}"`,
  ].join('\n');
}

/** The lab's own counting rules (its own chain or table, in the node's namespace only), per family. */
export async function installCounters(n: LabNode, vxlanPort: number, f: Family = 4): Promise<void> {
  if (counting() === 'nftables') {
    const r = await inNs(n.ns, 'nft', ['-f', '-'], nftCounters(vxlanPort, f) + '\n');
    if (r.code !== 0) throw new Error(`${n.name}: counters: ${r.stderr.trim()}`);
    return;
  }
  const cluster = PLANS[f].clusterCIDR;
  const rules = [
    // mangle POSTROUTING sees both forwarded and locally sent packets, and podwire has no rules there
    // that could end a packet's walk before it is counted.
    '*mangle',
    `:${COUNT_CHAIN} - [0:0]`,
    `-A ${COUNT_CHAIN} -o eth0 -p udp --dport ${vxlanPort} -m comment --comment vxlan`,
    `-A ${COUNT_CHAIN} -o eth0 -s ${cluster} -d ${cluster} -m comment --comment plain`,
    `-A POSTROUTING -j ${COUNT_CHAIN}`,
    'COMMIT',
  ];
  const r = await inNs(n.ns, `${tables(f)}-restore`, ['--noflush'], rules.join('\n') + '\n');
  if (r.code !== 0) throw new Error(`${n.name}: counters: ${r.stderr.trim()}`);
}

async function readCounters(n: LabNode, f: Family): Promise<{ vxlan: number; plain: number }> {
  if (counting() === 'nftables') {
    const r = await run('ip', ['netns', 'exec', n.ns, 'nft', '-j', 'list', 'chain', 'inet', COUNT_TABLE, 'postrouting']);
    type Rule = { rule?: { comment?: string; expr?: { counter?: { packets: number } }[] } };
    const rules = ((JSON.parse(r.stdout || '{}') as { nftables?: Rule[] }).nftables ?? []).flatMap((x) => (x.rule ? [x.rule] : []));
    const count = (what: string) => rules.find((x) => x.comment === `${what}${f}`)?.expr?.find((e) => e.counter)?.counter?.packets ?? NaN;
    return { vxlan: count('vxlan'), plain: count('plain') };
  }
  const r = await run('ip', ['netns', 'exec', n.ns, tables(f), '-t', 'mangle', '-L', COUNT_CHAIN, '-v', '-x', '-n']);
  const count = (what: string) =>
    Number(
      r.stdout
        .split('\n')
        .find((l) => l.includes(`/* ${what} */`))
        ?.trim()
        .split(/\s+/)[0] ?? NaN,
    );
  return { vxlan: count('vxlan'), plain: count('plain') };
}

/** The pod MTU `node up` chose for a lab node, from the subnet file it wrote. */
export function labPodMtu(n: LabNode): number {
  const mtu = readSubnetFile(n.subnetFile).mtu;
  if (mtu === undefined) throw new Error(`${n.subnetFile} has no mtu`);
  return mtu;
}

/** IP and ICMP headers: what a ping's payload leaves of the MTU. */
const ICMP_HEADERS: Record<Family, number> = { 4: 28, 6: 48 };

export async function prove(lab: Lab, modes: Map<string, Map<Family, Set<string>>>): Promise<{ checks: Check[]; counters: Counters[] }> {
  // One family after the other: each counts only its own packets, and the machine is not flooded.
  const results = [];
  for (const [k, f] of lab.families.entries()) results.push(await proveFamily(lab, f, k, modes));
  return { checks: results.flatMap((r) => r.checks), counters: results.flatMap((r) => r.counters) };
}

/** The proofs in one family: `k` is the family's index in every pod's and node's address lists. */
async function proveFamily(
  lab: Lab,
  f: Family,
  k: number,
  modes: Map<string, Map<Family, Set<string>>>,
): Promise<{ checks: Check[]; counters: Counters[] }> {
  const before = await Promise.all(lab.nodes.map((n) => readCounters(n, f)));
  const checks: Check[] = [];
  const g = (proof: ProofId) => ({ proof, family: f });
  const pods = lab.pods;
  const ipOf = (p: (typeof pods)[number]) => p.ips[k]!;
  const first = lab.nodes.map((n) => pods.find((p) => p.node === n)).filter((p) => p !== undefined);

  const pairs = pods.flatMap((a) => pods.filter((b) => b !== a).map((b) => [a, b] as const));
  const mesh = await pool(pairs, 16, ([a, b]) => pingAsync(a.ns, ipOf(b)));
  pairs.forEach(([a, b], i) =>
    checks.push({
      ...g('podToPod'),
      from: `${a.name}@${a.node.name}`,
      to: `${b.name}@${b.node.name} ${ipOf(b)}`,
      expect: true,
      ok: mesh[i]!,
    }),
  );

  const nodeToPod = lab.nodes.flatMap((n) => first.filter((p) => p.node !== n).map((p) => [n, p] as const));
  const nodeOk = await pool(nodeToPod, 16, ([n, p]) => pingAsync(n.ns, ipOf(p)));
  nodeToPod.forEach(([n, p], i) =>
    checks.push({ ...g('nodeToRemotePod'), from: n.name, to: `${p.name}@${p.node.name} ${ipOf(p)}`, expect: true, ok: nodeOk[i]! }),
  );

  // ICMP payload = MTU - IP header (20 or 40) - ICMP header (8).
  const mtuPairs = first.flatMap((a) => first.filter((b) => b.node !== a.node).map((b) => [a, b] as const));
  const mtu = new Map(lab.nodes.map((n) => [n, labPodMtu(n)]));
  const full = await pool(mtuPairs, 16, ([a, b]) => pingAsync(a.ns, ipOf(b), mtu.get(a.node)! - ICMP_HEADERS[f]));
  mtuPairs.forEach(([a, b], i) =>
    checks.push({
      ...g('fullMtu'),
      from: `${a.name}@${a.node.name}`,
      to: `${b.name}@${b.node.name} (${mtu.get(a.node)} bytes)`,
      expect: true,
      ok: full[i]!,
    }),
  );
  if (mtuPairs.length) {
    const [a, b] = mtuPairs[0]!;
    const big = mtu.get(a.node)! + 1;
    checks.push({
      ...g('mtuPlusOneRefused'),
      from: `${a.name}@${a.node.name}`,
      to: `${b.name}@${b.node.name} (${big} bytes)`,
      expect: false,
      ok: await pingAsync(a.ns, ipOf(b), big - ICMP_HEADERS[f]),
    });
  }

  const after = await Promise.all(lab.nodes.map((n) => readCounters(n, f)));
  const counters = lab.nodes.map((n, i) => ({
    node: n.name,
    family: f,
    vxlan: after[i]!.vxlan - before[i]!.vxlan,
    plain: after[i]!.plain - before[i]!.plain,
    modes: modes.get(n.name)?.get(f) ?? new Set<string>(),
  }));
  if (lab.pods.length > 1) {
    for (const c of counters) {
      checks.push({
        ...g('travelsVxlan'),
        from: c.node,
        to: `UDP to the VXLAN port on eth0`,
        expect: c.modes.has('vxlan'),
        ok: c.vxlan > 0,
      });
      checks.push({
        ...g('travelsPlain'),
        from: c.node,
        to: 'plain pod packets on eth0',
        expect: c.modes.has('host-gw'),
        ok: c.plain > 0,
      });
    }
  }
  return { checks, counters };
}

export const passed = (c: Check): boolean => c.ok === c.expect;
