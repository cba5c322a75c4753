// podwire's nftables backend: one table, `inet podwire`, for both families. One table because a
// dual-stack pod then costs one transaction and the tools read one listing; `inet` because nat works in
// it for both families (kernel 5.2+), and the maps are typed per family inside it.
import { type Family, familyOf } from '../net/ip.js';
//
//   node's chains (node up, the agent), rewritten as a whole when they differ:
//     node-forward      filter forward, prio filter+10   accept what comes from or goes to the cluster
//                                                       network (after kube-proxy's filter-forward, -10)
//     node-postrouting  nat postrouting, prio srcnat+10  traffic leaving the cluster network is
//                                                       masqueraded, except what kube-proxy marked 0x4000
//                                                       (its own masquerading chain does those)
//     node-output       filter output, prio filter       no ICMP redirect to a pod (pod to pod goes
//                                                       through the node: node/setup.ts podsViaNode)
//   pods' chains (the same rules on every node; the plugin writes them when the table is missing):
//     hostports-prerouting, hostports-output   nat, prio dstnat+10 (after kube-proxy's services)
//                       fib daddr type local -> hostports
//     hostports         dnat to the map's value: hostips4/6 (a hostIP given) first, then hostports4/6
//     pods-postrouting  nat postrouting: hairpin (a pod of the subnet reaching a pod through a hostPort),
//                       then ipMasq by set membership
//   per pod only elements, each with the comment "<owner> <containerID>/<ifname>" (kernel/names.ts):
//     hostports4  proto . hostPort              : podIP . containerPort
//     hostips4    hostIP . proto . hostPort     : podIP . containerPort
//     hairpin4    podSubnet . podIP . proto . containerPort
//     masq4       podIP                 masqown4  podIP . podSubnet  (own subnet: not masqueraded)
//   and the same with 6.
//
// Every change is one `nft -f -` transaction: all of it or nothing. Removing elements adds each first,
// then deletes it, in the same transaction: that succeeds whether or not the element was there (nft 1.0.6
// has no `destroy`), so a DEL repeated after a killed one works, in one process.
import { sha256Hex } from '../runtime/hash.js';
import { run } from '../runtime/run.js';
import { KernelError, commandFailed } from '../kernel/errors.js';
import type { PodRules, PortMapping } from './rules.js';
import { FAMILIES, nftAddrType, nftIpKeyword } from '../kernel/nft-json.js';

export const NFT_TABLE = 'inet podwire';
const T = NFT_TABLE;
const addrType = nftAddrType;
const ipKw = nftIpKeyword;
const MULTICAST = { 4: '224.0.0.0/4', 6: 'ff00::/8' } as const;

/** Thrown when the table (or one of its maps) is not there yet. */
export class NftMissing extends KernelError {}

/** Runs one nft script as one transaction. */
export async function nftApply(lines: readonly string[]): Promise<void> {
  if (!lines.length) return;
  const r = await run('nft', ['-f', '-'], { input: lines.join('\n') + '\n', label: 'nft -f -' });
  if (r.code === 0) return;
  if (/No such file or directory/.test(r.stderr)) throw new NftMissing(`nft: ${firstError(r.stderr)}`, r.stderr);
  throw commandFailed('nft -f -', firstError(r.stderr));
}

/** nft prints the failing line under the error: the error line, then the line it was about. */
const firstError = (stderr: string): string => {
  const lines = stderr.split('\n');
  const i = lines.findIndex((l) => l.includes('Error:'));
  return i < 0 ? stderr.trim() : [lines[i]!.replace(/^.*?Error: /, ''), (lines[i + 1] ?? '').trim()].filter(Boolean).join(': ');
};

// ---- the skeleton: sets, maps, and the pods' chains -------------------------------------------------

function podSkeleton(): string[] {
  const out = [`add table ${T}`];
  for (const f of FAMILIES) {
    const a = addrType(f);
    out.push(
      `add map ${T} hostports${f} { type inet_proto . inet_service : ${a} . inet_service; comment "hostPort on every node address -> pod"; }`,
      `add map ${T} hostips${f} { type ${a} . inet_proto . inet_service : ${a} . inet_service; comment "hostPort on one hostIP -> pod"; }`,
      `add set ${T} hairpin${f} { type ${a} . ${a} . inet_proto . inet_service; flags interval; comment "pod subnet . pod . containerPort: masquerade through a hostPort"; }`,
      `add set ${T} masq${f} { type ${a}; comment "ipMasq pods"; }`,
      `add set ${T} masqown${f} { type ${a} . ${a}; flags interval; comment "ipMasq pod . its own subnet (not masqueraded)"; }`,
    );
  }
  out.push(
    `add chain ${T} hostports`,
    `add chain ${T} hostports-prerouting { type nat hook prerouting priority dstnat + 10; policy accept; }`,
    `add chain ${T} hostports-output { type nat hook output priority -90; policy accept; }`,
    `add chain ${T} pods-postrouting { type nat hook postrouting priority srcnat + 10; policy accept; }`,
  );
  const rules: [string, string[]][] = [
    ['hostports-prerouting', ['fib daddr type local jump hostports']],
    ['hostports-output', ['fib daddr type local jump hostports']],
    [
      'hostports',
      FAMILIES.flatMap((f) => [
        `dnat ${ipKw(f)} to ${ipKw(f)} daddr . meta l4proto . th dport map @hostips${f}`,
        `dnat ${ipKw(f)} to meta l4proto . th dport map @hostports${f}`,
      ]),
    ],
    [
      'pods-postrouting',
      FAMILIES.flatMap((f) => [
        `ct status dnat ${ipKw(f)} saddr . ${ipKw(f)} daddr . meta l4proto . th dport @hairpin${f} masquerade`,
        `${ipKw(f)} saddr . ${ipKw(f)} daddr @masqown${f} return`,
        `${ipKw(f)} saddr @masq${f} ${ipKw(f)} daddr != ${MULTICAST[f]} masquerade`,
      ]),
    ],
  ];
  return [...out, ...chainRules(rules)];
}

/** Each chain flushed and written again with, first, a counter whose comment carries the rules' fingerprint. */
function chainRules(chains: readonly [string, string[]][]): string[] {
  const out: string[] = [];
  for (const [chain, rules] of chains) {
    const fp = sha256Hex(rules.join('\n')).slice(0, 12);
    out.push(`flush chain ${T} ${chain}`, `add rule ${T} ${chain} counter comment "podwire ${fp}"`);
    out.push(...rules.map((r) => `add rule ${T} ${chain} ${r}`));
  }
  return out;
}

/** The node's chains for its cluster networks. */
function nodeChains(nets: readonly { family: Family; clusterCIDR: string }[]): [string, string[]][] {
  const kw = (f: Family) => ipKw(f);
  return [
    [
      'node-forward',
      nets.flatMap((n) => [`${kw(n.family)} saddr ${n.clusterCIDR} accept`, `${kw(n.family)} daddr ${n.clusterCIDR} accept`]),
    ],
    [
      'node-postrouting',
      [
        'meta mark & 0x4000 == 0x4000 return',
        ...nets.flatMap((n) => [
          `${kw(n.family)} saddr ${n.clusterCIDR} ${kw(n.family)} daddr ${n.clusterCIDR} return`,
          `${kw(n.family)} saddr ${n.clusterCIDR} ${kw(n.family)} daddr != ${MULTICAST[n.family]} masquerade fully-random`,
        ]),
      ],
    ],
    [
      // No ICMP redirect to a pod: its packets to a neighbour on the bridge keep going through the node
      // (pods route their subnet via the node; node/setup.ts podsViaNode).
      'node-output',
      nets.map((n) =>
        n.family === 4 ? `ip daddr ${n.clusterCIDR} icmp type redirect drop` : `ip6 daddr ${n.clusterCIDR} icmpv6 type nd-redirect drop`,
      ),
    ],
  ];
}

/** The whole script node up writes: the skeleton and the node's chains (pods' elements are kept). */
export function nodeScript(nets: readonly { family: Family; clusterCIDR: string }[]): string[] {
  return [
    ...podSkeleton(),
    `add chain ${T} node-forward { type filter hook forward priority filter + 10; policy accept; }`,
    `add chain ${T} node-postrouting { type nat hook postrouting priority srcnat + 10; policy accept; }`,
    `add chain ${T} node-output { type filter hook output priority filter; policy accept; }`,
    ...chainRules(nodeChains(nets)),
  ];
}

/** The fingerprint each chain's first rule should carry, for `nodeScript(nets)` (pure). */
export function expectedFingerprints(nets: readonly { family: Family; clusterCIDR: string }[]): Map<string, { fp: string; rules: number }> {
  const m = new Map<string, { fp: string; rules: number }>();
  for (const line of nodeScript(nets)) {
    const c = /^add rule \S+ \S+ (\S+) counter comment "podwire (\w+)"$/.exec(line);
    if (c) m.set(c[1]!, { fp: c[2]!, rules: 0 });
  }
  for (const line of nodeScript(nets)) {
    const c = /^add rule \S+ \S+ (\S+) /.exec(line);
    if (c) m.get(c[1]!)!.rules++;
  }
  return m;
}

// ---- per pod: elements -----------------------------------------------------------------------------

/** The element lines (without add/delete) for one attachment's address: [set, element] pairs. */
export function podElements(p: PodRules): [set: string, element: string][] {
  const f = familyOf(p.ip);
  // What goes into the script is checked here, whoever built it: the owner is 16 hex digits, and the label
  // (containerID/ifname, for people) keeps only characters that cannot end nft's quoted string: an
  // interface name may hold a '"'.
  if (!/^[0-9a-f]{16}$/.test(p.owner)) throw new KernelError(`nftables: owner ${JSON.stringify(p.owner)} is not 16 hex digits`);
  const label = p.label?.replace(/[^A-Za-z0-9_.\-/@]/g, '_');
  const c = `comment "${p.owner}${label ? ` ${label}` : ''}"`;
  const out: [string, string][] = [];
  if (p.masq) out.push([`masq${f}`, `${p.ip} ${c}`], [`masqown${f}`, `${p.ip} . ${p.subnet} ${c}`]);
  const hairpins = new Set<string>();
  for (const m of p.mappings) {
    if (m.hostIP && familyOf(m.hostIP) !== f) continue;
    out.push(
      m.hostIP
        ? [`hostips${f}`, `${m.hostIP} . ${m.protocol} . ${m.hostPort} ${c} : ${p.ip} . ${m.containerPort}`]
        : [`hostports${f}`, `${m.protocol} . ${m.hostPort} ${c} : ${p.ip} . ${m.containerPort}`],
    );
    const h = `${p.subnet} . ${p.ip} . ${m.protocol} . ${m.containerPort}`;
    if (!hairpins.has(h)) out.push([`hairpin${f}`, `${h} ${c}`]);
    hairpins.add(h);
  }
  return out;
}

export const addLines = (pods: readonly PodRules[]): string[] =>
  pods.flatMap(podElements).map(([s, e]) => `add element ${T} ${s} { ${e} }`);

/** Add, then delete: removes the elements whether or not they are there (see the file's comment). */
export const removeLines = (pods: readonly PodRules[]): string[] =>
  pods
    .flatMap(podElements)
    .flatMap(([s, e]) => [`add element ${T} ${s} { ${e} }`, `delete element ${T} ${s} { ${e.replace(/ comment "[^"]*"| : .*$/g, '')} }`]);

/** Adds one attachment's elements; the skeleton too when the table is not there yet (a node's first pod without node up). */
export async function addPodElements(pods: readonly PodRules[]): Promise<string[]> {
  const lines = addLines(pods);
  try {
    await nftApply(lines);
    return lines;
  } catch (e) {
    if (!(e instanceof NftMissing)) throw explainClash(e, pods);
    const all = [...podSkeleton(), ...lines];
    await nftApply(all).catch((e2: unknown) => {
      throw explainClash(e2, pods);
    });
    return all;
  }
}

/** A hostPort another pod holds: "File exists" on its key. */
function explainClash(e: unknown, pods: readonly PodRules[]): unknown {
  if (!(e instanceof KernelError) || !/File exists/.test(e.message)) return e;
  const m = /\{ (.*?) comment/.exec(e.message)?.[1];
  return new KernelError(
    `a hostPort is already taken on this node by another pod (${m ?? pods.map((p) => p.ip).join(', ')}): ${e.message}`,
    e.details,
  );
}

/** Removes attachments' elements; a missing table means there is nothing to remove. Returns the lines applied. */
export async function removePodElements(pods: readonly PodRules[]): Promise<string[]> {
  const lines = removeLines(pods);
  try {
    await nftApply(lines);
    return lines;
  } catch (e) {
    if (e instanceof NftMissing) return [];
    // A key now held by another pod (this one's element is gone already): delete only what this owner has.
    if (e instanceof KernelError && /File exists/.test(e.message)) {
      return removeOwners(new Set(pods.map((p) => p.owner)));
    }
    throw e;
  }
}

// ---- reading the table -----------------------------------------------------------------------------

interface NftJsonElem {
  elem?: { val: unknown; comment?: string };
}
import type { NftListing as Listing } from '../kernel/nft-json.js';

export interface NftTable {
  /** Per chain: its rules' comments (the first is the fingerprint) and how many rules it has. */
  chains: Map<string, { rules: number; fp?: string; hook?: string; prio?: number }>;
  /** Every attachment's rules found in the sets and maps. */
  pods: PodRules[];
  /** Elements without an owner's comment (not podwire's own doing), per set. */
  strays: number;
}

/** `nft -j list table inet podwire`, or undefined when there is no such table. */
export async function readTable(): Promise<NftTable | undefined> {
  const r = await run('nft', ['-j', 'list', 'table', 'inet', 'podwire'], { label: 'nft -j list table' });
  if (r.code !== 0) {
    if (/No such file or directory/.test(r.stderr)) return undefined;
    throw commandFailed('nft -j list table inet podwire', firstError(r.stderr));
  }
  return parseTable(JSON.parse(r.stdout) as Listing);
}

const scalar = (v: unknown): string => {
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  const p = (v as { prefix?: { addr: string; len: number } }).prefix;
  if (p) return `${p.addr}/${p.len}`;
  const r = (v as { range?: [unknown, unknown] }).range;
  if (r) return `${scalar(r[0])}-${scalar(r[1])}`;
  return JSON.stringify(v);
};
const parts = (v: unknown): string[] =>
  (typeof v === 'object' && v !== null && Array.isArray((v as { concat?: unknown }).concat)
    ? (v as { concat: unknown[] }).concat
    : [v]
  ).map(scalar);

/** The table as nft -j lists it, turned into each attachment's rules (pure). */
export function parseTable(listing: Listing): NftTable {
  const chains = new Map<string, { rules: number; fp?: string; hook?: string; prio?: number }>();
  const pods = new Map<string, PodRules>();
  let strays = 0;
  const pod = (comment: string | undefined, ip: string): PodRules | undefined => {
    const m = /^([0-9a-f]{16})(?: (\S+))?$/.exec(comment ?? '');
    if (!m) return undefined;
    const key = `${m[1]} ${ip}`;
    let p = pods.get(key);
    if (!p) pods.set(key, (p = { owner: m[1]!, ...(m[2] ? { label: m[2] } : {}), ip, subnet: '', masq: false, mappings: [] }));
    return p;
  };
  for (const o of listing.nftables ?? []) {
    const c = o.chain as { name: string; hook?: string; prio?: number } | undefined;
    if (c) chains.set(c.name, { rules: 0, hook: c.hook, prio: c.prio });
    const r = o.rule as { chain: string; comment?: string } | undefined;
    if (r) {
      const ch = chains.get(r.chain) ?? { rules: 0 };
      if (ch.rules === 0 && r.comment?.startsWith('podwire ')) ch.fp = r.comment.slice(8);
      ch.rules++;
      chains.set(r.chain, ch);
    }
    const s = (o.set ?? o.map) as { name: string; elem?: unknown[] } | undefined;
    if (!s?.elem) continue;
    for (const raw of s.elem) {
      const [keyPart, value] = Array.isArray(raw) ? [raw[0] as NftJsonElem, raw[1]] : [raw as NftJsonElem, undefined];
      const e = keyPart.elem ?? { val: keyPart as unknown };
      const key = parts(e.val);
      const val = value === undefined ? [] : parts(value);
      const name = s.name.replace(/[46]$/, '');
      const ip = name === 'hairpin' ? key[1]! : name === 'masq' || name === 'masqown' ? key[0]! : val[0]!;
      const p = pod(e.comment, ip);
      if (!p) {
        strays++;
        continue;
      }
      if (name === 'masq') p.masq = true;
      else if (name === 'masqown' || name === 'hairpin') p.subnet = key[name === 'hairpin' ? 0 : 1]!;
      else if (name === 'hostports' || name === 'hostips') {
        const [hostIP, proto, port] = name === 'hostips' ? key : [undefined, ...key];
        const m: PortMapping = { hostPort: Number(port), containerPort: Number(val[1]), protocol: proto as 'tcp' | 'udp' };
        if (hostIP) m.hostIP = hostIP;
        p.mappings.push(m);
      }
    }
  }
  return { chains, pods: [...pods.values()], strays };
}

/** Removes every element of these owners (GC, reclaim, a DEL without its result): one list, one transaction. */
export async function removeOwners(owners: ReadonlySet<string>): Promise<string[]> {
  if (!owners.size) return [];
  const t = await readTable();
  const mine = (t?.pods ?? []).filter((p) => owners.has(p.owner));
  return mine.length ? removePodElements(mine) : [];
}

/** The owners the table holds elements of (GC compares them with the attachments still in use). */
export async function ownersInTable(): Promise<PodRules[]> {
  return (await readTable())?.pods ?? [];
}

/** The node's chains as they should be: written when a fingerprint or a rule count differs. Returns what changed. */
export async function ensureNftNode(nets: readonly { family: Family; clusterCIDR: string }[]): Promise<string[]> {
  const t = await readTable();
  const want = expectedFingerprints(nets);
  const differ = [...want].filter(([name, w]) => {
    const have = t?.chains.get(name);
    return !have || have.fp !== w.fp || have.rules !== w.rules;
  });
  if (!differ.length) return [];
  await nftApply(nodeScript(nets));
  return [`nftables ${NFT_TABLE}: ${differ.map(([n]) => n).join(', ')}`];
}

/** The trace's text for lines applied: nft's own commands, one per line. */
export const nftCommands = (lines: readonly string[]): string => lines.map((l) => `nft ${l}`).join('\n');

/** Which of the node's chains (and the pods' skeleton) are missing or not as node up writes them: empty when all are. */
export async function nftNodeProblems(nets: readonly { family: Family; clusterCIDR: string }[]): Promise<string[]> {
  const t = await readTable();
  if (!t) return [`table ${NFT_TABLE} is missing`];
  return [...expectedFingerprints(nets)].flatMap(([name, w]) => {
    const have = t.chains.get(name);
    if (!have) return [`chain ${name} is missing`];
    return have.fp !== w.fp || have.rules !== w.rules ? [`chain ${name} differs from what node up writes`] : [];
  });
}

/** Whether a table ("inet podwire-policy") exists. */
export async function nftTableExists(table: string): Promise<boolean> {
  const [family, name] = table.split(' ');
  const r = await run('nft', ['list', 'table', family!, name!]);
  return r.code === 0;
}

/** Deletes a table; one that is not there is fine. */
export async function nftDeleteTable(table: string): Promise<void> {
  const [family, name] = table.split(' ');
  const r = await run('nft', ['delete', 'table', family!, name!]);
  if (r.code !== 0 && !/No such file or directory/.test(r.stderr)) throw commandFailed(`nft delete table ${table}`, firstError(r.stderr));
}

/**
 * node down: the node's chains go; the table too when no pod has elements in it. Pods still running keep
 * their hostPorts and masquerade (as their iptables chains stay on the iptables backend): their DELs remove
 * them. Returns what it removed.
 */
export async function removeNftNode(): Promise<string[]> {
  const t = await readTable();
  if (!t) return [];
  if (!t.pods.length) {
    await nftDeleteTable(NFT_TABLE);
    return [`nftables ${NFT_TABLE} removed`];
  }
  const chains = ['node-forward', 'node-postrouting', 'node-output'].filter((c) => t.chains.has(c));
  await nftApply(chains.map((c) => `delete chain ${T} ${c}`));
  return chains.length
    ? [`nftables ${NFT_TABLE}: ${chains.join(', ')} removed (${t.pods.length} pod address(es) keep their elements)`]
    : [];
}
