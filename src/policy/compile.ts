// NetworkPolicies compiled into one nftables table, `inet podwire-policy`, for one node (pure). Every
// verdict is a rule a learner can read, and no packet waits for userspace:
//
//   chain ingress  filter forward, prio filter-5   established/related accept; a packet to an isolated
//                                                   local pod (@in-iso4) -> in-dispatch
//   chain egress   filter forward, prio filter-5   the same for packets from an isolated local pod
//   chain in-dispatch   per policy: ip daddr @p-<id>-sel4 jump p-<id>-in; then drop (nothing allowed it)
//   chain p-<id>-in     per rule: peers (@p-<id>-in<j>-pods4, ipBlock ranges inline) and ports (inline
//                       proto . port ranges, or @p-<id>-in<j>-named4: pod . proto . port) -> accept
//
// Only the policies that select a pod of this node are compiled: the rules grow with local policies.
// Both chains sit on the forward hook, which sees every pod packet that is routed (to and from other
// nodes, by VXLAN or host-gw) and, with br_netfilter, every one bridged between two pods of this node;
// after kube-proxy's DNAT, so a Service is judged on its endpoint. Traffic from the node itself goes out
// by OUTPUT and is never judged (kubelet's probes). The table's sets of pod addresses are its only parts
// that change with pods: a pod coming or going changes elements, not rules, and the rules grow with
// policies, not with pods × policies. With no policy there is no table at all.
import { sha256Hex } from '../runtime/hash.js';
import { type Family, familyOf, parseCidr } from '../net/ip.js';
import type { PolicySummary } from '../nodestate/reports.js';
import { FAMILIES, nftAddrType, nftIpKeyword } from '../kernel/nft-json.js';
import { loggedDrop } from '../guard/table.js';
import { type NamespaceInfo, type Peer, type PodInfo, type Policy, type Rule, matches } from './model.js';

export const POLICY_TABLE = 'inet podwire-policy';
/** The log prefix of a packet no policy allowed: "podwire-policy ingress: " (podwire drops). */
export const POLICY_PREFIX = 'podwire-policy';
const T = POLICY_TABLE;
const kw = nftIpKeyword;
const addrType = nftAddrType;

export interface Compiled {
  /** The table's definition without set elements; its fingerprint says whether an update can be elements only. */
  structure: string[];
  fingerprint: string;
  /** Every set and its elements (pod addresses, pod . proto . port). */
  elements: Map<string, string[]>;
  /** Per policy (namespace/name): its table id, the pods it selects here and in the cluster, named ports no pod has. */
  policies: PolicySummary[];
  rules: number;
}

export const policyId = (p: { namespace: string; name: string }): string => sha256Hex(`${p.namespace}/${p.name}`).slice(0, 10);

/** Ranges of cidr minus except, as nft interval elements (from-to), family-wise. */
function blockRanges(cidr: string, except: readonly string[]): string[] {
  const c = parseCidr(cidr)!;
  let ranges: [bigint, bigint][] = [[c.first, c.last]];
  for (const e of except) {
    const x = parseCidr(e)!;
    ranges = ranges.flatMap(([a, b]): [bigint, bigint][] => {
      if (x.last < a || x.first > b) return [[a, b]];
      const out: [bigint, bigint][] = [];
      if (x.first > a) out.push([a, x.first - 1n]);
      if (x.last < b) out.push([x.last + 1n, b]);
      return out;
    });
  }
  const fmt = (v: bigint) => formatAddr(c.family, v);
  return ranges.map(([a, b]) => (a === b ? fmt(a) : `${fmt(a)}-${fmt(b)}`));
}

function formatAddr(f: Family, v: bigint): string {
  if (f === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return groups.join(':');
}

/** The pods of each namespace: selections start from a namespace's pods, not the cluster's. */
type ByNamespace = Map<string, PodInfo[]>;
const byNamespace = (pods: readonly PodInfo[]): ByNamespace => {
  const m: ByNamespace = new Map();
  for (const p of pods) {
    let l = m.get(p.namespace);
    if (!l) m.set(p.namespace, (l = []));
    l.push(p);
  }
  return m;
};

/** Pods a peer selects (never hostNetwork pods: their address is their node's). */
function peerPods(p: Policy, peer: Peer, byNs: ByNamespace, nsLabels: Map<string, Record<string, string>>): PodInfo[] {
  const spaces = peer.namespaceSelector
    ? [...byNs.keys()].filter((ns) => matches(peer.namespaceSelector!, nsLabels.get(ns) ?? { 'kubernetes.io/metadata.name': ns }))
    : [p.namespace];
  return spaces.flatMap((ns) =>
    (byNs.get(ns) ?? []).filter(
      (pod) => !pod.hostNetwork && pod.ips.length && (!peer.podSelector || matches(peer.podSelector, pod.labels)),
    ),
  );
}

export function compile(
  policies: readonly Policy[],
  pods: readonly PodInfo[],
  namespaces: readonly NamespaceInfo[],
  self: string,
): Compiled {
  const nsLabels = new Map(namespaces.map((n) => [n.name, n.labels]));
  const sets = new Map<string, { type: string; elements: Set<string> }>();
  const set = (name: string, type: string): Set<string> => {
    let s = sets.get(name);
    if (!s) sets.set(name, (s = { type, elements: new Set() }));
    return s.elements;
  };
  const chains: [string, string[], string?][] = [];
  const dispatch = { in: [] as string[], eg: [] as string[] };
  const stats: Compiled['policies'] = [];
  for (const f of FAMILIES) {
    set(`in-iso${f}`, addrType(f));
    set(`eg-iso${f}`, addrType(f));
  }
  const sorted = [...policies].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  const byNs = byNamespace(pods);
  const portNames = new Set(pods.flatMap((x) => x.ports.map((c) => `${c.name}/${c.protocol}`)));
  for (const p of sorted) {
    const id = policyId(p);
    const selected = (byNs.get(p.namespace) ?? []).filter((x) => !x.hostNetwork && matches(p.podSelector, x.labels));
    const targets = selected.filter((x) => x.node === self);
    const missingPorts = namedPortsNoPodHas(p, selected, portNames);
    // Only what matters here: a policy that selects no pod of this node judges nothing here (a local pod's
    // packet to a pod it selects is judged at that pod's node), so it gets no set, chain or rule.
    if (!targets.length) {
      stats.push({
        key: `${p.namespace}/${p.name}`,
        id,
        selects: 0,
        selectsInCluster: selected.length,
        rules: 0,
        types: p.types,
        missingPorts,
      });
      continue;
    }
    for (const f of FAMILIES) {
      const sel = set(`p-${id}-sel${f}`, addrType(f));
      for (const t of targets) for (const ip of t.ips) if (familyOf(ip) === f) sel.add(ip);
    }
    let count = 0;
    for (const dir of ['in', 'eg'] as const) {
      if (!p.types.includes(dir === 'in' ? 'Ingress' : 'Egress')) continue;
      for (const f of FAMILIES) {
        for (const ip of set(`p-${id}-sel${f}`, addrType(f))) set(`${dir}-iso${f}`, addrType(f)).add(ip);
        dispatch[dir].push(`${kw(f)} ${dir === 'in' ? 'daddr' : 'saddr'} @p-${id}-sel${f} jump p-${id}-${dir}`);
      }
      const lines: string[] = [];
      const what = `${p.namespace}/${p.name} ${dir === 'in' ? 'ingress' : 'egress'}`;
      (dir === 'in' ? p.ingress : p.egress).forEach((r, j) =>
        lines.push(
          ...ruleLines(p, r, `p-${id}-${dir}${j}`, dir, targets, pods, byNs, nsLabels, set).map((l) => `${l} comment "${what}[${j}]"`),
        ),
      );
      // First a counter naming the policy: how many packets it judged, and its name for `path` (nft's
      // JSON leaves chain comments out).
      chains.push([`p-${id}-${dir}`, [`counter comment "${what}"`, ...lines], `comment "${what}";`]);
      count += lines.length;
    }
    stats.push({
      key: `${p.namespace}/${p.name}`,
      id,
      selects: targets.length,
      selectsInCluster: selected.length,
      rules: count,
      types: p.types,
      missingPorts,
    });
  }
  const structure = [`add table ${T} { comment "podwire: NetworkPolicy"; }`];
  for (const [name, s] of [...sets].sort(([a], [b]) => a.localeCompare(b))) structure.push(`add set ${T} ${name} { type ${s.type}; }`);
  const base = (dir: 'in' | 'eg') => [
    'ct state established,related accept',
    // IPv6 neighbour discovery is the address resolution ARP is for IPv4 (which netfilter never sees): a
    // pod must always be resolvable, or even the replies it is allowed cannot reach it.
    'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept',
    ...FAMILIES.map((f) => `${kw(f)} ${dir === 'in' ? 'daddr' : 'saddr'} @${dir}-iso${f} jump ${dir}-dispatch`),
  ];
  const all: [string, string[], string?][] = [
    ['ingress', base('in'), 'type filter hook forward priority filter - 5; policy accept;'],
    ['egress', base('eg'), 'type filter hook forward priority filter - 5; policy accept;'],
    [
      'in-dispatch',
      [...dispatch.in, ...loggedDrop(`${POLICY_PREFIX} ingress`, 'counter drop comment "isolated for ingress: no policy allows it"')],
    ],
    [
      'eg-dispatch',
      [...dispatch.eg, ...loggedDrop(`${POLICY_PREFIX} egress`, 'counter drop comment "isolated for egress: no policy allows it"')],
    ],
    ...chains,
  ];
  // Chains first (a jump needs its target), then rules.
  for (const [c, , spec] of all) structure.push(spec ? `add chain ${T} ${c} { ${spec} }` : `add chain ${T} ${c}`);
  let rules = 0;
  for (const [c, lines] of all) {
    for (const l of lines) structure.push(`add rule ${T} ${c} ${l}`);
    rules += lines.length;
  }
  const elements = new Map([...sets].map(([n, s]) => [n, [...s.elements].sort()]));
  return { structure, fingerprint: sha256Hex(structure.join('\n')).slice(0, 16), elements, policies: stats, rules };
}

/** One rule of a policy: accept lines for what it allows, in both families. */
function ruleLines(
  p: Policy,
  r: Rule,
  name: string,
  dir: 'in' | 'eg',
  targets: readonly PodInfo[],
  pods: readonly PodInfo[],
  byNs: ByNamespace,
  nsLabels: Map<string, Record<string, string>>,
  set: (name: string, type: string) => Set<string>,
): string[] {
  const peerDir = dir === 'in' ? 'saddr' : 'daddr';
  // Who the peers are: pods (a set, its elements follow the pods) and ipBlock ranges (inline).
  const peerPodsAll = r.peers ? r.peers.filter((q) => !q.ipBlock).flatMap((q) => peerPods(p, q, byNs, nsLabels)) : undefined;
  const blocks = (r.peers ?? []).flatMap((q) => (q.ipBlock ? [q.ipBlock] : []));
  // The destination pods of the rule, on which named ports resolve.
  const dests = dir === 'in' ? targets : (peerPodsAll ?? pods.filter((x) => !x.hostNetwork));
  const numeric = (r.ports ?? []).filter((x) => typeof x.port !== 'string');
  const named = (r.ports ?? []).filter((x) => typeof x.port === 'string');
  const portSet = numeric.map((x) => `${x.protocol} . ${x.port === undefined ? '0-65535' : x.endPort ? `${x.port}-${x.endPort}` : x.port}`);
  const out: string[] = [];
  for (const f of FAMILIES) {
    const conds: string[] = [];
    if (r.peers) {
      if (peerPodsAll!.length || !blocks.length) {
        const s = set(`${name}-pods${f}`, addrType(f));
        for (const q of peerPodsAll!) for (const ip of q.ips) if (familyOf(ip) === f) s.add(ip);
        conds.push(`${kw(f)} ${peerDir} @${name}-pods${f}`);
      }
      const ranges = blocks.filter((b) => familyOf(b.cidr) === f).flatMap((b) => blockRanges(b.cidr, b.except));
      if (ranges.length) conds.push(`${kw(f)} ${peerDir} { ${ranges.join(', ')} }`);
      // Peers given, none of this family (ipBlocks of the other): the rule allows nothing of this family.
      if (!conds.length) continue;
    }
    // Without a peer condition the family-free parts are written once (with IPv4's), not twice.
    const once = f === 4 || !!r.peers;
    const ports: string[] = [];
    if (!r.ports && once) ports.push('');
    if (portSet.length && once) ports.push(`meta l4proto . th dport { ${portSet.join(', ')} }`);
    if (named.length) {
      const s = set(`${name}-named${f}`, `${addrType(f)} . inet_proto . inet_service`);
      for (const d of dests) {
        for (const x of named) {
          const cp = d.ports.find((c) => c.name === x.port && c.protocol === x.protocol);
          if (cp) for (const ip of d.ips) if (familyOf(ip) === f) s.add(`${ip} . ${x.protocol} . ${cp.port}`);
        }
      }
      ports.push(`${kw(f)} daddr . meta l4proto . th dport @${name}-named${f}`);
    }
    for (const c of conds.length ? conds : ['']) {
      for (const pm of ports) out.push([c, pm, 'accept'].filter(Boolean).join(' '));
    }
  }
  return out;
}

/** The whole table, replaced in one transaction (packets see the old rules or the new, never none). */
export function fullScript(c: Compiled): string[] {
  const els = [...c.elements].filter(([, e]) => e.length).map(([n, e]) => `add element ${T} ${n} { ${e.join(', ')} }`);
  return [`add table ${T}`, `delete table ${T}`, ...c.structure, ...els];
}

/** What changes between two compilations of the same structure: set elements only, or undefined when the structure differs. */
export function elementUpdate(prev: Compiled, next: Compiled): string[] | undefined {
  if (prev.fingerprint !== next.fingerprint) return undefined;
  const out: string[] = [];
  for (const [n, els] of next.elements) {
    const old = new Set(prev.elements.get(n) ?? []);
    const now = new Set(els);
    const gone = [...old].filter((e) => !now.has(e));
    const added = els.filter((e) => !old.has(e));
    if (gone.length) out.push(`delete element ${T} ${n} { ${gone.join(', ')} }`);
    if (added.length) out.push(`add element ${T} ${n} { ${added.join(', ')} }`);
  }
  return out;
}

/** A policy's named ports that no pod it could reach has (ingress: its own pods; egress: any pod). */
function namedPortsNoPodHas(p: Policy, selected: readonly PodInfo[], portNames: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const [dir, rules] of [
    ['ingress', p.ingress],
    ['egress', p.egress],
  ] as const) {
    for (const r of rules) {
      for (const x of r.ports ?? []) {
        if (typeof x.port !== 'string') continue;
        // Ingress: a port of the pods it selects; egress: of any pod of the cluster.
        const has =
          dir === 'ingress'
            ? selected.some((d) => d.ports.some((c) => c.name === x.port && c.protocol === x.protocol))
            : portNames.has(`${x.port}/${x.protocol}`);
        if (!has) out.push(`${dir} ${x.port}/${x.protocol}`);
      }
    }
  }
  return [...new Set(out)];
}
