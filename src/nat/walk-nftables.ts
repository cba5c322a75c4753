// Which DNAT kube-proxy's nftables mode gives a packet: table `ip kube-proxy` (or `ip6`) as `nft -j`
// lists it, followed the way its rules send the first packet of a connection — `services` looks the
// packet up in the verdict map service-ips (address . protocol . port), or, for the node's own addresses
// (nodeport-ips), in service-nodeports (protocol . port); the chain it names goes on to one endpoint
// (`numgen random mod N vmap`: the first is taken, as the iptables walk takes the first), whose chain
// DNATs; a rule that marks the packet for masquerade sets pkt.mark, for the POSTROUTING walk below. Pure.
import type { Packet, ServiceView } from './walk-iptables.js';
import { cidrContains, familyOf, parseCidr, parseIP } from '../net/ip.js';

import type { NftListing, NftObject as Obj } from '../kernel/nft-json.js';
export type { NftListing } from '../kernel/nft-json.js';

export interface NftNatResult {
  chains: string[];
  dnat?: { ip: string; port?: number };
  /** Endpoints the Service chose among. */
  choices: number;
}

const key = (v: unknown): string[] =>
  (typeof v === 'object' && v !== null && Array.isArray((v as Obj).concat) ? ((v as Obj).concat as unknown[]) : [v]).map(String);
const target = (v: unknown): string | undefined => {
  const o = v as { goto?: { target: string }; jump?: { target: string } } | undefined;
  return o?.goto?.target ?? o?.jump?.target;
};

export function walkKubeProxyNft(listing: NftListing, pkt: Packet): NftNatResult {
  const res: NftNatResult = { chains: [], choices: 0 };
  const rules = rulesByChain(listing);
  if (pkt.dport === undefined || !/^(tcp|udp|sctp)$/.test(pkt.proto)) return res;
  const sets = setElements(listing);
  const pairs = setElementPairs(listing);
  const lookup = (map: string, want: string[]): string | undefined =>
    target(pairs.get(map)?.find(([k]) => key(k).join(' ') === want.join(' '))?.[1]);
  const local = (sets.get('nodeport-ips') ?? []).map(String).includes(pkt.dst);
  const first =
    lookup('service-ips', [pkt.dst, pkt.proto, String(pkt.dport)]) ??
    (local ? lookup('service-nodeports', [pkt.proto, String(pkt.dport)]) : undefined);
  if (!first) return res;
  res.chains.push('services');
  const walk = (chain: string, depth: number): boolean => {
    if (depth > 10) return false;
    res.chains.push(chain);
    for (const expr of rules.get(chain) ?? []) {
      for (const x of expr) {
        const dnat = x.dnat as { addr?: string; port?: number } | undefined;
        if (dnat?.addr) {
          res.dnat = { ip: dnat.addr, ...(dnat.port !== undefined ? { port: Number(dnat.port) } : {}) };
          return true;
        }
        const vmap = x.vmap as { key?: Obj; data?: { set?: unknown[][] } } | undefined;
        if (vmap?.key && 'numgen' in vmap.key) {
          const set = vmap.data?.set ?? [];
          res.choices = Math.max(res.choices, set.length);
          const t = target(set[0]?.[1]);
          if (t && walk(t, depth + 1)) return true;
        }
        const t = target(x);
        // kube-proxy's mark for masquerade, where the rule's matches hold (masqueraded on the way out: POSTROUTING).
        if (t === 'mark-for-masquerade') {
          if (nftRuleMatches(expr, pkt, sets)) pkt.mark = ((pkt.mark ?? 0) | 0x4000) >>> 0;
          continue;
        }
        if (t && walk(t, depth + 1)) return true;
      }
    }
    res.chains.pop();
    return false;
  };
  if (!walk(first, 0)) res.chains = [];
  return res;
}

// ---- The Services a kube-proxy table holds, for the pictures (`diagram`, `podwire web`) ----

/**
 * The Services kube-proxy's nftables mode holds in one table (pure), the same view `servicesOf` gives of
 * iptables mode: each `service-ips` element (Cluster IP . protocol . port) with the DNAT of every endpoint
 * its chain can reach, and the `service-nodeports` port whose chain bears the same Service port's name.
 * kube-proxy names a Service port's chains `service-HASH-ns/name/proto/port`, `external-HASH-…` alike.
 */
export function servicesOfNft(listing: NftListing | undefined): ServiceView[] {
  const maps = setElementPairs(listing);
  const rules = rulesByChain(listing);
  const nameOf = (chain: string): string => {
    const m = /^(?:service|external)-[A-Z0-9]{8}-([^/]+)\/([^/]+)\/[^/]+\/(.*)$/.exec(chain);
    return m ? `${m[1]}/${m[2]}:${m[3]}` : chain;
  };
  const backends = (chain: string, seen: Set<string>): { ip: string; port?: number }[] => {
    if (seen.has(chain) || chain === 'mark-for-masquerade') return [];
    seen.add(chain);
    return (rules.get(chain) ?? []).flatMap((expr) =>
      expr.flatMap((x) => {
        const dnat = x.dnat as { addr?: string; port?: number } | undefined;
        if (dnat?.addr) return [{ ip: dnat.addr, ...(dnat.port !== undefined ? { port: Number(dnat.port) } : {}) }];
        const set = (x.vmap as { data?: { set?: unknown[][] } } | undefined)?.data?.set;
        const targets = set ? set.map((e) => target(e[1])) : [target(x)];
        return targets.flatMap((t) => (t ? backends(t, seen) : []));
      }),
    );
  };
  const out: ServiceView[] = [];
  for (const [k, v] of maps.get('service-ips') ?? []) {
    const [ip, proto, port] = key(k);
    const t = target(v);
    if (!ip || !proto || !port || !t) continue;
    out.push({ name: nameOf(t), clusterIP: ip, port: Number(port), proto, backends: backends(t, new Set()) });
  }
  for (const [k, v] of maps.get('service-nodeports') ?? []) {
    const t = target(v);
    const s = t && out.find((x) => x.name === nameOf(t));
    if (s) s.nodePort = Number(key(k)[1]);
  }
  return out;
}

/** Each chain's rules, as their expression lists, in order. */
function rulesByChain(listing: NftListing | undefined): Map<string, Obj[][]> {
  const rules = new Map<string, Obj[][]>();
  for (const o of listing?.nftables ?? []) {
    const r = o.rule as { chain: string; expr: Obj[] } | undefined;
    if (r) rules.set(r.chain, [...(rules.get(r.chain) ?? []), r.expr]);
  }
  return rules;
}

/** A map's elements as [key, value] (an element with a comment is {elem: {val, comment}}). */
function setElementPairs(listing: NftListing | undefined): Map<string, [unknown, unknown][]> {
  const maps = new Map<string, [unknown, unknown][]>();
  for (const o of listing?.nftables ?? []) {
    const m = o.map as { name: string; elem?: unknown[] } | undefined;
    if (m)
      maps.set(
        m.name,
        (m.elem ?? []).flatMap((e) => (Array.isArray(e) ? [[((e[0] as Obj)?.elem as Obj | undefined)?.val ?? e[0], e[1]]] : [])),
      );
  }
  return maps;
}

// ---- POSTROUTING in nftables: the masquerade a routed packet meets (podwire's table, kube-proxy's) ----

/** What a packet is for an nftables match: its addresses, protocol, port, mark, and whether it was DNATed. */
export interface NftPacket extends Packet {
  dnatted?: boolean;
}

/** A set's elements as plain values (an element with a comment is {elem: {val, comment}}). */
function setElements(listing: NftListing): Map<string, unknown[]> {
  const sets = new Map<string, unknown[]>();
  for (const o of listing.nftables ?? []) {
    const s = (o.set ?? o.map) as { name: string; elem?: unknown[] } | undefined;
    if (s)
      sets.set(
        s.name,
        (s.elem ?? []).map((e) => ((e as Obj)?.elem as Obj | undefined)?.val ?? e),
      );
  }
  return sets;
}

/** The value a match's left side reads from the packet; undefined when it is not one this walk knows. */
function read(left: unknown, pkt: NftPacket): unknown {
  const l = left as Obj;
  const v6 = familyOf(pkt.dst) === 6;
  if (l.payload) {
    const { protocol, field } = l.payload as { protocol: string; field: string };
    if (protocol === 'ip' || protocol === 'ip6') {
      if ((protocol === 'ip6') !== v6) return null; // the other family's header: no match
      return field === 'saddr' ? pkt.src : field === 'daddr' ? pkt.dst : undefined;
    }
    if (field === 'dport' && (protocol === 'th' || protocol === pkt.proto)) return pkt.dport;
    return protocol === 'th' || protocol === 'tcp' || protocol === 'udp' ? null : undefined;
  }
  if (l.meta) return (l.meta as Obj).key === 'l4proto' ? pkt.proto : (l.meta as Obj).key === 'mark' ? (pkt.mark ?? 0) : undefined;
  if (l.ct) return (l.ct as Obj).key === 'status' ? (pkt.dnatted ? ['dnat'] : []) : undefined;
  if (Array.isArray(l['&'])) {
    const [a, mask] = l['&'] as [unknown, number];
    const x = read(a, pkt);
    return typeof x === 'number' ? x & mask : undefined;
  }
  if (Array.isArray(l.concat)) return (l.concat as unknown[]).map((x) => read(x, pkt));
  return undefined;
}

/** Does a value equal an element of the right side: an address, a prefix, a range, a number, a name? */
function same(value: unknown, el: unknown): boolean {
  if (Array.isArray(value)) {
    const parts = (el as Obj)?.concat as unknown[] | undefined;
    return !!parts && parts.length === value.length && value.every((v, i) => same(v, parts[i]));
  }
  const e = el as Obj;
  if (e && typeof e === 'object' && e.prefix) {
    const { addr, len } = e.prefix as { addr: string; len: number };
    const c = parseCidr(`${addr}/${len}`);
    const ip = typeof value === 'string' ? parseIP(value) : undefined;
    return !!c && !!ip && cidrContains(c, ip);
  }
  if (e && typeof e === 'object' && Array.isArray(e.range)) {
    const [lo, hi] = e.range as [number, number];
    return typeof value === 'number' && value >= lo && value <= hi;
  }
  return String(value) === String(el);
}

/** One match expression; undefined when it reads what this walk does not know (the rule is then not taken). */
function matchOne(m: { op: string; left: unknown; right: unknown }, pkt: NftPacket, sets: Map<string, unknown[]>): boolean | undefined {
  const value = read(m.left, pkt);
  if (value === undefined) return undefined;
  if (value === null) return false;
  const r = m.right as Obj | string | number;
  let hit: boolean;
  if (typeof r === 'string' && r.startsWith('@')) hit = (sets.get(r.slice(1)) ?? []).some((e) => same(value, e));
  else if (r && typeof r === 'object' && Array.isArray(r.set)) hit = (r.set as unknown[]).some((e) => same(value, e));
  else if (Array.isArray(value) && typeof r === 'string')
    hit = value.includes(r); // ct status dnat
  else hit = same(value, r);
  if (m.op === '==' || m.op === 'in') return hit;
  if (m.op === '!=') return !hit;
  return undefined;
}

/** Do a rule's matches all hold for the packet (its statements aside)? */
export function nftRuleMatches(expr: Obj[], pkt: NftPacket, sets: Map<string, unknown[]>): boolean {
  for (const x of expr) {
    if (!x.match) continue;
    const ok = matchOne(x.match as { op: string; left: unknown; right: unknown }, pkt, sets);
    if (!ok) return false;
  }
  return true;
}

export interface NftSnatResult {
  /** e.g. "inet podwire node-postrouting". */
  chains: string[];
  /** undefined: masquerade (the address of the interface it leaves by). */
  to?: string;
}

/**
 * The masquerade (or SNAT) the nat postrouting chains of one nftables table give a routed packet, walked
 * the way the kernel does for a connection's first packet: base chains by priority, jumps and returns,
 * the mark kube-proxy sets. Rules that read what this walk does not know are not taken. Pure.
 */
export function walkNftSnat(listing: NftListing, pkt: NftPacket): NftSnatResult | undefined {
  const sets = setElements(listing);
  const rules = rulesByChain(listing);
  const bases: { name: string; table: string; family: string; prio: number }[] = [];
  for (const o of listing.nftables ?? []) {
    const c = o.chain as { name: string; table: string; family: string; type?: string; hook?: string; prio?: number } | undefined;
    if (c?.type === 'nat' && c.hook === 'postrouting') bases.push({ name: c.name, table: c.table, family: c.family, prio: c.prio ?? 0 });
  }
  let found: NftSnatResult | undefined;
  const chains: string[] = [];
  const walk = (chain: string, depth: number): 'nat' | 'return' | 'accept' => {
    if (depth > 10) return 'accept';
    chains.push(chain);
    for (const expr of rules.get(chain) ?? []) {
      if (!nftRuleMatches(expr, pkt, sets)) continue;
      for (const x of expr) {
        const mangle = x.mangle as { key?: Obj; value?: unknown } | undefined;
        if (mangle && (mangle.key?.meta as Obj | undefined)?.key === 'mark') {
          // meta mark set meta mark | 0x4000, ^ 0x4000, or a number
          const v = mangle.value as Obj | number;
          const mark = pkt.mark ?? 0;
          pkt.mark =
            typeof v === 'number'
              ? v
              : Array.isArray(v['|'])
                ? mark | Number((v['|'] as unknown[])[1])
                : Array.isArray(v['^'])
                  ? mark ^ Number((v['^'] as unknown[])[1])
                  : mark;
        }
        if ('masquerade' in x || x.snat) {
          const to = (x.snat as { addr?: string } | undefined)?.addr;
          found = { chains: [...chains], ...(to ? { to } : {}) };
          return 'nat';
        }
        if ('return' in x) {
          chains.pop();
          return 'return';
        }
        if ('accept' in x || 'drop' in x) return 'accept';
        const t = target(x);
        if (t) {
          const v = walk(t, depth + 1);
          if (v !== 'return') return v;
          if ((x as Obj).goto) {
            chains.pop();
            return 'return';
          }
        }
      }
    }
    chains.pop();
    return 'return';
  };
  for (const b of bases.sort((a, c) => a.prio - c.prio)) {
    chains.length = 0;
    chains.push(`${b.family} ${b.table}`);
    if (walk(b.name, 0) === 'nat') return found;
  }
  return undefined;
}
