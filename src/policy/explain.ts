// What a node's NetworkPolicy table (inet podwire-policy, compile.ts) does to the first
// packet of a connection, read from `nft -j` and evaluated the way the kernel would: on the forward hook,
// the ingress chain (is the destination an isolated pod? which policy's rule, if any, accepts it?) and
// the egress chain (the same for the source). Pure: `path` hands it the listing and the packet.
import { familyOf, parseIP } from '../net/ip.js';
import type { Packet } from '../nat/walk-iptables.js';

import type { NftListing as Listing, NftObject as Obj } from '../kernel/nft-json.js';

export interface PolicyVerdict {
  /** "ingress" or "egress": which side isolated the pod. */
  dir: 'ingress' | 'egress';
  pod: string;
  allowed: boolean;
  /** The rule that allowed it ("x/from-y ingress[0]"), or the policies that select the pod when none did. */
  by?: string;
  selecting: string[];
}

const num = (v: unknown): bigint | undefined => {
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'string') {
    const ip = parseIP(v);
    if (ip) return ip.value;
  }
  return undefined;
};

/** Whether one value matches one set element (a value, a range, a prefix). */
function elemMatches(el: unknown, v: string | number): boolean {
  if (typeof el === 'string' || typeof el === 'number') return String(el) === String(v);
  const o = el as { range?: [unknown, unknown]; prefix?: { addr: string; len: number }; elem?: { val: unknown } };
  if (o.elem) return elemMatches(o.elem.val, v);
  const x = num(v);
  if (o.range && x !== undefined) {
    const [a, b] = o.range.map(num);
    return a !== undefined && b !== undefined && a <= x && x <= b;
  }
  if (o.prefix && x !== undefined) {
    const base = parseIP(o.prefix.addr);
    if (!base) return false;
    const bits = base.family === 4 ? 32 : 128;
    const shift = BigInt(bits - o.prefix.len);
    return base.value >> shift === x >> shift;
  }
  return false;
}

const tupleMatches = (el: unknown, vs: (string | number)[]): boolean => {
  const inner = (el as { elem?: { val: unknown } }).elem?.val ?? el;
  const c = (inner as { concat?: unknown }).concat;
  const parts = typeof inner === 'object' && inner !== null && Array.isArray(c) ? c : undefined;
  if (!parts) return vs.length === 1 && elemMatches(inner, vs[0]!);
  return parts.length === vs.length && parts.every((p, i) => elemMatches(p, vs[i]!));
};

export function evaluatePolicy(listing: Listing, pkt: Packet): PolicyVerdict[] {
  const sets = new Map<string, unknown[]>();
  const rules = new Map<string, { expr: Obj[]; comment?: string }[]>();
  const chainComments = new Map<string, string>();
  for (const o of listing.nftables ?? []) {
    const c = o.chain as { name: string; comment?: string } | undefined;
    if (c?.comment) chainComments.set(c.name, c.comment);
    const s = o.set as { name: string; elem?: unknown[] } | undefined;
    if (s) sets.set(s.name, s.elem ?? []);
    const r = o.rule as { chain: string; expr: Obj[]; comment?: string } | undefined;
    if (r) rules.set(r.chain, [...(rules.get(r.chain) ?? []), { expr: r.expr, comment: r.comment }]);
  }
  const v6 = familyOf(pkt.dst) === 6;
  const value = (left: unknown): (string | number)[] | undefined => {
    const one = (x: unknown): string | number | undefined => {
      const p = (x as { payload?: { protocol: string; field: string } }).payload;
      if (p?.field === 'saddr') return pkt.src;
      if (p?.field === 'daddr') return pkt.dst;
      if (p?.field === 'dport') return pkt.dport;
      if ((x as { meta?: { key: string } }).meta?.key === 'l4proto') return pkt.proto;
      return undefined;
    };
    const c = (left as { concat?: unknown }).concat;
    const parts = Array.isArray(c) ? c : [left];
    const vs = parts.map(one);
    return vs.some((x) => x === undefined) ? undefined : (vs as (string | number)[]);
  };
  /** A rule's matches hold for the packet (a match on a field it lacks, such as a port of ICMP, does not). */
  const holds = (expr: Obj[]): boolean =>
    expr.every((x) => {
      const m = x.match as { op: string; left: unknown; right: unknown } | undefined;
      if (!m) return true;
      const p = (m.left as { payload?: { protocol: string } }).payload;
      if (p && (p.protocol === 'ip6') !== v6 && p.protocol !== 'th') return false;
      const vs = value(m.left);
      if (!vs) return false;
      const right = m.right;
      const els =
        typeof right === 'string' && right.startsWith('@')
          ? (sets.get(right.slice(1)) ?? [])
          : ((right as { set?: unknown[] }).set ?? [right]);
      const found = els.some((e) => tupleMatches(e, vs));
      return m.op === '!=' ? !found : found;
    });
  const target = (expr: Obj[]): string | undefined => {
    for (const x of expr) {
      const j = (x.jump ?? x.goto) as { target: string } | undefined;
      if (j) return j.target;
    }
    return undefined;
  };
  const accepts = (expr: Obj[]) => expr.some((x) => 'accept' in x);
  const out: PolicyVerdict[] = [];
  for (const [dir, base, dispatch, pod] of [
    ['ingress', 'ingress', 'in-dispatch', pkt.dst],
    ['egress', 'egress', 'eg-dispatch', pkt.src],
  ] as const) {
    const isolated = (rules.get(base) ?? []).some((r) => target(r.expr) === dispatch && holds(r.expr));
    if (!isolated) continue;
    const selecting: string[] = [];
    let by: string | undefined;
    for (const d of rules.get(dispatch) ?? []) {
      const chain = target(d.expr);
      if (!chain || !holds(d.expr)) continue;
      const rs = rules.get(chain) ?? [];
      selecting.push(chainComments.get(chain) ?? rs[0]?.comment ?? chain);
      by ??= rs.find((r) => accepts(r.expr) && holds(r.expr))?.comment;
    }
    out.push({ dir, pod, allowed: by !== undefined, ...(by ? { by } : {}), selecting: [...new Set(selecting)] });
  }
  return out;
}
