// Which DNAT kube-proxy's nftables mode gives a packet: table `ip kube-proxy` (or `ip6`) as `nft -j`
// lists it, followed the way its rules send the first packet of a connection — `services` looks the
// packet up in the verdict map service-ips (address . protocol . port), or, for the node's own addresses
// (nodeport-ips), in service-nodeports (protocol . port); the chain it names goes on to one endpoint
// (`numgen random mod N vmap`: the first is taken, as the iptables walk takes the first), whose chain
// DNATs. Marks for masquerade are noted, not needed. Pure.
import type { Packet } from './nat.js';

type Obj = Record<string, unknown>;
export interface NftListing {
  nftables?: Obj[];
}

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
  const maps = new Map<string, unknown[]>();
  const rules = new Map<string, Obj[][]>();
  for (const o of listing.nftables ?? []) {
    const m = (o.map ?? o.set) as { name: string; elem?: unknown[] } | undefined;
    if (m) maps.set(m.name, m.elem ?? []);
    const r = o.rule as { chain: string; expr: Obj[] } | undefined;
    if (r) rules.set(r.chain, [...(rules.get(r.chain) ?? []), r.expr]);
  }
  if (pkt.dport === undefined || !/^(tcp|udp|sctp)$/.test(pkt.proto)) return res;
  const lookup = (map: string, want: string[]): string | undefined => {
    for (const e of maps.get(map) ?? []) {
      if (!Array.isArray(e)) continue;
      if (key(e[0]).join(' ') === want.join(' ')) return target(e[1]);
    }
    return undefined;
  };
  const local = (maps.get('nodeport-ips') ?? []).map(String).includes(pkt.dst);
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
        if (t && t !== 'mark-for-masquerade' && walk(t, depth + 1)) return true;
      }
    }
    res.chains.pop();
    return false;
  };
  if (!walk(first, 0)) res.chains = [];
  return res;
}
