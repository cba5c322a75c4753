// `podwire path SRC DST[:PORT]`: the hops one packet takes, computed from the live kernel. In each namespace
// on the way: the nat table (a Cluster IP or a nodePort/hostPort becomes a Pod IP:port), `ip route get`,
// and for the link it leaves by: a veth's other end, the bridge's FDB (which port has the MAC), or the
// VXLAN device's neighbour and FDB entries (which node to send the encapsulated frame to), after which
// the outer packet is followed to that node the same way. Each address is named (Pod IP, Node IP, ...).
// Then the reply's way back through each NAT, from the conntrack entries the request made (replyHops).
import { BITS, cidrContains, familyOf, formatIP, joinHostPort, parseCidr, parseIP } from '../net/ip.js';
import { type Msg, msg, t } from '../i18n/index.js';
import { run } from '../runtime/run.js';
import { ROUTE_PROTO } from '../node/peers.js';
import { readNat } from '../nat/chains.js';
import { type NatTable, type Packet, type ServiceView, parseNat, servicesOf, walkNat, walkSnat } from '../nat/walk-iptables.js';
import { type NftTable, parseTable } from '../firewall/nftables.js';
import { servicesOfNft, walkKubeProxyNft, walkNftSnat } from '../nat/walk-nftables.js';
import { type NftListing, listNftTable, nftObjects } from '../kernel/nft-json.js';
import { evaluatePolicy } from '../policy/explain.js';
import { linkLocalOf, listBindings } from '../guard/table.js';

import { type Link, type Route, kind, linkByName, routeGet } from '../kernel/state.js';
import { type World, addressKind, vethPeer } from './world.js';

export interface Hop {
  ns: string;
  /** The namespace's name for people. */
  where: string;
  /** What happens here: a message id and its values, put into words where printed. */
  what: Msg;
  /** 1 for the outer (encapsulated) packet of a VXLAN hop. */
  depth: number;
}

/** Where the request was DNATed: the namespace, and the address:port before and after. */
/**
 * Where the request was rewritten: a DNAT (its destination: from -> to), or a masquerade/SNAT (its source:
 * from -> to, on its way to dst). The reply is rewritten back at each, in reverse order.
 */
interface NatPoint {
  ns: string;
  depth: number;
  kind: 'dnat' | 'snat';
  from: { ip: string; port?: number };
  to: { ip: string; port?: number };
  dst?: { ip: string; port?: number };
}

/** A connection as the kernel's conntrack table holds it: the original direction and the reply's. */
export interface CtEntry {
  proto: string;
  state?: string;
  orig: { src: string; dst: string; sport?: number; dport?: number };
  reply: { src: string; dst: string; sport?: number; dport?: number };
}

/** Lines of /proc/net/nf_conntrack ("ipv4 2 tcp 6 117 TIME_WAIT src=... dst=... sport=... dport=... src=..."). */
export function parseConntrack(text: string): CtEntry[] {
  const out: CtEntry[] = [];
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words.length < 6) continue;
    const tuples: Record<string, string>[] = [{}, {}];
    let k = -1;
    let state: string | undefined;
    for (const w of words.slice(5)) {
      const eq = w.indexOf('=');
      if (eq < 0) {
        if (k < 0 && /^[A-Z_]+$/.test(w)) state = w;
        continue;
      }
      const key = w.slice(0, eq);
      if (key === 'src') k++;
      if (k >= 0 && k < 2 && !(key in tuples[k]!)) tuples[k]![key] = w.slice(eq + 1);
    }
    const t = (x: Record<string, string>) => ({
      src: x.src ?? '',
      dst: x.dst ?? '',
      ...(x.sport ? { sport: Number(x.sport) } : {}),
      ...(x.dport ? { dport: Number(x.dport) } : {}),
    });
    if (k >= 1) out.push({ proto: words[2]!, ...(state ? { state } : {}), orig: t(tuples[0]!), reply: t(tuples[1]!) });
  }
  return out;
}

export interface PathResult {
  src: string;
  dst: string;
  port?: number;
  srcKind: Msg;
  dstKind: Msg;
  hops: Hop[];
  /** The reply's way back through each NAT on the way: read from the live conntrack table, or predicted. */
  reply: Hop[];
  /** Where the packet ends: delivered to an address's owner, or why it goes no further. */
  delivered: boolean;
  end: Msg;
  /** The address:port that answers, after DNAT. */
  finalDst: string;
  finalPort?: number;
}

/** A route lookup that failed says why as a message; one that answered is a Route. */
const isMsg = (r: Route | Msg): r is Msg => !('dst' in r);

const clusterIPHint = (): Msg => msg('kind.clusterIP');

export class PathFinder {
  readonly hops: Hop[] = [];
  readonly natPoints: NatPoint[] = [];

  constructor(readonly w: World) {}

  /** A namespace's nat table of the packet's family: iptables for IPv4, ip6tables for IPv6. */
  private natTable(ns: string, v6: boolean): Promise<NatTable> {
    return this.once(`nat|${ns}|${v6 ? 6 : 4}`, async () => parseNat(await readNat(v6, ns || undefined)));
  }

  /** What path reads of a namespace, each read once: a run-and-parse per key, its promise kept. */
  private readonly reads = new Map<string, Promise<unknown>>();
  private once<T>(key: string, read: () => Promise<T>): Promise<T> {
    let p = this.reads.get(key) as Promise<T> | undefined;
    if (!p) this.reads.set(key, (p = read()));
    return p;
  }

  /** A namespace's table inet podwire as `nft -j` lists it (nftables backend), or undefined where there is none. */
  private nftListing(ns: string): Promise<NftListing | undefined> {
    return this.once(`nft|${ns}`, () => listNftTable('inet', 'podwire', ns || undefined));
  }

  /** The same table, its pods' elements read (hostPorts, masquerade); parsed once per namespace. */
  private nftTable(ns: string): Promise<NftTable | undefined> {
    return this.once(`nftParsed|${ns}`, async () => {
      const l = await this.nftListing(ns);
      return l && parseTable(l);
    });
  }

  /**
   * POSTROUTING, once the packet is routed out of `oif`: the masquerade (or SNAT) it meets, in iptables'
   * nat table, kube-proxy's nftables table or podwire's, the first that rewrites it. The new source is the
   * address the packet leaves `oif` with: what the far end sees, and where its reply comes back to.
   */
  private async snat(ns: string, pkt: Packet, oif: string, dnatted: boolean, depth: number): Promise<void> {
    const v6 = familyOf(pkt.dst) === 6;
    const p = { ...pkt, oif, dnatted };
    const local = (ip: string) => this.w.owners.get(ip)?.ns === ns;
    let hit: { via: string; to?: string } | undefined;
    const ipt = walkSnat(await this.natTable(ns, v6), p, local);
    if (ipt) hit = { via: `nat ${ipt.chains.join(' > ')}`, to: ipt.to };
    for (const listing of hit ? [] : [await this.kubeProxyNft(ns, v6), await this.nftListing(ns)]) {
      const r = listing && walkNftSnat(listing, { ...p });
      if (r) {
        hit = { via: `nftables ${r.chains[0]} ${r.chains.slice(1).join(' > ')}`, to: r.to };
        break;
      }
    }
    if (!hit) return;
    const to =
      hit.to ?? (await this.route(ns, { src: '', dst: pkt.dst, proto: pkt.proto }).then((r) => (isMsg(r) ? undefined : r.prefsrc)));
    if (!to) return;
    const said = { via: hit.via, from: pkt.src, to, dev: oif, kind: this.describe(to) };
    this.hop(ns, msg(hit.to ? 'hop.snat' : 'hop.masq', said), depth);
    this.natPoints.push({ ns, depth, kind: 'snat', from: { ip: pkt.src }, to: { ip: to }, dst: { ip: pkt.dst, port: pkt.dport } });
    pkt.src = to;
  }

  /** kube-proxy's nftables table of a family in a namespace (its nftables mode), or undefined. */
  private kubeProxyNft(ns: string, v6: boolean): Promise<NftListing | undefined> {
    return this.once(`kp|${ns}|${v6 ? 6 : 4}`, () => listNftTable(v6 ? 'ip6' : 'ip', 'kube-proxy', ns || undefined));
  }

  private bridged?: { ns: string; at: number };

  /**
   * NetworkPolicy on a packet this namespace forwards (routed, or bridged with br_netfilter): its table
   * (inet podwire-policy) evaluated for the first packet. A hop says which policy's rule allows it, or
   * that it is dropped and which policies isolate the pod; nothing when no policy selects either end.
   */
  private async policyAllows(ns: string, pkt: Packet, depth: number, at = this.hops.length): Promise<boolean> {
    const listing = await this.once(`pol|${ns}`, () => listNftTable('inet', 'podwire-policy', ns || undefined));
    if (!listing) return true;
    let ok = true;
    const said: Hop[] = [];
    const where = this.w.scope.name(ns);
    for (const v of evaluatePolicy(listing, pkt)) {
      const what = msg(v.dir === 'ingress' ? 'hop.toPod' : 'hop.fromPod', { pod: v.pod });
      if (!v.allowed) ok = false;
      said.push({
        ns,
        where,
        depth,
        what: v.allowed
          ? msg('hop.policyAllowed', { dir: v.dir, what, by: v.by ?? '' })
          : msg('hop.policyDropped', { dir: v.dir, what, by: v.selecting.join(', ') }),
      });
    }
    // Where the packet met the hook; a drop ends the path there.
    this.hops.splice(at, ok ? 0 : this.hops.length - at, ...said);
    return ok;
  }

  /**
   * podwire's hostPorts in nftables: the packet is for this namespace's own address (fib daddr type local),
   * so hostips (that address . proto . port) is looked up first, then hostports (proto . port).
   */
  private async nftHostPort(ns: string, pkt: Packet): Promise<{ to: { ip: string; port: number }; via: Msg } | undefined> {
    if (this.w.owners.get(pkt.dst)?.ns !== ns || pkt.dport === undefined) return undefined;
    const tab = await this.nftTable(ns);
    const v6 = familyOf(pkt.dst) === 6;
    for (const p of tab?.pods ?? []) {
      if ((familyOf(p.ip) === 6) !== v6) continue;
      for (const m of p.mappings) {
        if (m.protocol !== pkt.proto || m.hostPort !== pkt.dport || (m.hostIP && m.hostIP !== pkt.dst)) continue;
        const map = `${m.hostIP ? 'hostips' : 'hostports'}${v6 ? 6 : 4}`;
        return {
          to: { ip: p.ip, port: m.containerPort },
          via: msg('hop.viaNft', { map, owner: p.label ?? p.owner }),
        };
      }
    }
    return undefined;
  }

  /** Whether any nat table read so far has a rule for this destination (a Cluster IP). */
  async natMentions(ip: string): Promise<boolean> {
    const read = (prefix: string) => [...this.reads].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);
    for (const t of read('nat|')) {
      for (const rules of ((await t) as NatTable).values())
        if (rules.some((r) => r.matches.some(([n, o, v]) => !n && o === '-d' && v === `${ip}/${BITS[familyOf(ip)]}`))) return true;
    }
    // kube-proxy's nftables mode: a key of its service-ips map.
    for (const t of read('kp|')) {
      const elems = nftObjects((await t) as NftListing | undefined, 'map').find((m) => m.name === 'service-ips')?.elem ?? [];
      if (JSON.stringify(elems).includes(`"${ip}"`)) return true;
    }
    return false;
  }

  private hop(ns: string, what: Msg, depth: number): void {
    this.hops.push({ ns, where: this.w.scope.name(ns), what, depth });
  }

  /** What an address is, for the reader. */
  describe(ip: string): Msg {
    return addressKind(this.w, ip) ?? msg('kind.none');
  }

  private async route(ns: string, pkt: Packet): Promise<Route | Msg> {
    const line = `route get ${pkt.dst}${pkt.iif ? ` from ${pkt.src} iif ${pkt.iif}` : ''}`;
    try {
      return (
        (await routeGet(ns ? `/run/netns/${ns}` : undefined, pkt.dst, pkt.iif ? { src: pkt.src, iif: pkt.iif } : undefined)) ??
        msg('hop.noAnswer', { cmd: `ip ${line}` })
      );
    } catch (e) {
      return msg('hop.ipFailed', { cmd: `ip ${line}`, error: (e as Error).message.replace(/^ip -j: /, '').split('\n')[0]! });
    }
  }

  /** Why that route: podwire's route to a peer's podCIDR, the pod's default route, a connected subnet. */
  private routeReason(ns: string, r: Route): Msg | '' {
    const v = this.w.views.get(ns)!;
    const role = this.w.roles.get(ns)!;
    // `ip route get` does not say which route it chose: the longest prefix holding the destination, with
    // the same device and gateway, is the one.
    const dst = parseIP(r.dst)!;
    const prefix = (d: string): number => {
      if (d === 'default') return 0;
      const c = parseCidr(d.includes('/') ? d : `${d}/${BITS[familyOf(d)]}`);
      return c && cidrContains(c, dst) ? c.prefix : -1;
    };
    const entry = v.routes
      .filter((x) => x.dev === r.dev && x.gateway === r.gateway && prefix(x.dst) >= 0)
      .sort((a, b) => prefix(b.dst) - prefix(a.dst))[0];
    if (!entry) return '';
    if (entry.protocol === String(ROUTE_PROTO)) {
      return msg(kind(linkByName(v.links, entry.dev)) === 'vxlan' ? 'reason.vxlan' : 'reason.hostgw', { dst: entry.dst });
    }
    if (entry.dst === 'default') return msg(role.kind === 'pod' ? 'reason.podDefault' : 'reason.default');
    if (!entry.gateway) return msg('reason.connected', { dst: entry.dst, dev: entry.dev ?? '' });
    return msg('reason.route', { dst: entry.dst });
  }

  /**
   * Follows the frame from `dev` in `ns` to the interface holding `next` (the gateway, or the destination
   * itself): across a veth, through a bridge (by its FDB), or both. Returns where it arrives.
   */
  /**
   * The spoofing checks where a pod's frame enters its node (guard/table.ts): on a bound port, the source
   * must be one of the pod's own addresses. False when the frame is dropped there.
   */
  private async identity(ns: string, port: string, pkt: Packet, depth: number): Promise<boolean> {
    const bindings = await this.once(`guard|${ns}`, () => listBindings(ns || undefined));
    const b = bindings.find((x) => x.port === port);
    if (!b || !pkt.src) return true;
    const canon = (ip: string) => formatIP(parseIP(ip)!);
    const own = b.ips.some((ip) => canon(ip) === canon(pkt.src)) || (familyOf(pkt.src) === 6 && canon(pkt.src) === linkLocalOf(b.mac));
    this.hop(ns, msg(own ? 'hop.identityOk' : 'hop.identityDrop', { port, ip: pkt.src, own: b.ips.join(', ') }), depth);
    return own;
  }

  private async l2(ns: string, dev: string, next: string, depth: number, pkt: Packet): Promise<{ ns: string; dev: string } | undefined> {
    const owner = this.w.owners.get(next);
    if (!owner) {
      this.hop(ns, msg('hop.nobody', { next, dev }), depth);
      return undefined;
    }
    const v = this.w.views.get(ns)!;
    const out = linkByName(v.links, dev);
    if (kind(out) === 'bridge') {
      this.switchTo(ns, dev, owner, depth);
      return owner;
    }
    if (kind(out) === 'veth' && out) {
      const peer = vethPeer(this.w, v, out);
      if (!peer) {
        this.hop(ns, msg('hop.vethHidden', { dev }), depth);
        return undefined;
      }
      const master = peer.link.master;
      const p = { dev, peer: peer.link.ifname, ns: this.w.scope.name(peer.ns), bridge: master ?? '' };
      this.hop(ns, msg(master ? 'hop.vethBridge' : 'hop.veth', p), depth);
      if (!master) return { ns: peer.ns, dev: peer.link.ifname };
      if (!(await this.identity(peer.ns, peer.link.ifname, pkt, depth))) return undefined;
      if (owner.ns === peer.ns && owner.dev === master) {
        this.hop(peer.ns, msg('hop.bridgeHolds', { bridge: master, ip: next, kind: this.describe(next), ns: p.ns }), depth);
        return owner;
      }
      // Bridged in that namespace: with br_netfilter the frame meets its forward hook (NetworkPolicy).
      this.bridged = { ns: peer.ns, at: this.hops.length };
      this.switchTo(peer.ns, master, owner, depth);
      return owner;
    }
    this.hop(ns, msg('hop.out', { dev, next, kind: this.describe(next) }), depth);
    return owner;
  }

  /** A bridge forwarding a frame to the port that leads to `owner`, as its FDB says. */
  private switchTo(ns: string, bridge: string, owner: { ns: string; dev: string }, depth: number): void {
    const v = this.w.views.get(ns)!;
    const mac = linkByName(this.w.views.get(owner.ns)!.links, owner.dev)?.address;
    const port = v.links.find((l) => l.master === bridge && kind(l) === 'veth' && vethPeer(this.w, v, l)?.ns === owner.ns);
    if (!port) {
      this.hop(ns, msg('hop.noPort', { bridge, ns: this.w.scope.name(owner.ns) }), depth);
      return;
    }
    const learned = v.fdb.some((f) => f.mac === mac && f.ifname === port.ifname && !f.flags?.includes('self'));
    const how = msg(learned ? 'hop.learned' : 'hop.flood', { mac: mac ?? '?', port: port.ifname });
    this.hop(ns, msg('hop.switch', { bridge, port: port.ifname, how }), depth);
    const peer = vethPeer(this.w, v, port);
    if (peer) this.hop(ns, msg('hop.vethOut', { port: port.ifname, peer: peer.link.ifname, ns: this.w.scope.name(peer.ns) }), depth);
  }

  /** The VXLAN device: neighbour (VTEP IP -> MAC), FDB (MAC -> Node IP), then the outer packet to that node. */
  private async vxlan(ns: string, dev: Link, gw: string, pkt: Packet, depth: number): Promise<{ ns: string; dev: string } | undefined> {
    const v = this.w.views.get(ns)!;
    const d = dev.linkinfo?.info_data ?? {};
    const neigh = v.neighs.find((n) => n.dst === gw && n.dev === dev.ifname);
    if (!neigh?.lladdr) {
      this.hop(ns, msg('hop.noNeigh', { dev: dev.ifname, gw }), depth);
      return undefined;
    }
    const fdb = v.fdb.find((f) => f.ifname === dev.ifname && f.mac === neigh.lladdr && f.dst);
    const vni = String(d.id);
    const state = neigh.state?.join(' ').toLowerCase() ?? '';
    this.hop(ns, msg('hop.neigh', { dev: dev.ifname, vni, gw, mac: neigh.lladdr, state }), depth);
    if (!fdb?.dst) {
      this.hop(ns, msg('hop.noFdb', { dev: dev.ifname, mac: neigh.lladdr }), depth);
      return undefined;
    }
    const local = ((d.local ?? d.local6) as string | undefined) ?? '';
    const fdbHop = { mac: neigh.lladdr, dst: fdb.dst, kind: this.describe(fdb.dst), local: local || '?', port: String(d.port), vni };
    this.hop(ns, msg('hop.fdb', fdbHop), depth);
    const outer: Packet = { src: local, dst: fdb.dst, proto: 'udp', dport: d.port as number };
    const end = await this.follow(ns, outer, depth + 1);
    if (!end) return undefined;
    const remote = this.w.views.get(end.ns)!;
    // The device of the same VNI and family (a dual-stack node has one per family, often with one VNI).
    const v6 = familyOf(outer.dst) === 6;
    const decap = remote.links.find(
      (l) => kind(l) === 'vxlan' && l.linkinfo?.info_data?.id === d.id && (l.linkinfo?.info_data?.local6 !== undefined) === v6,
    );
    if (!decap) {
      this.hop(end.ns, msg('hop.noVxlan', { vni, ns: this.w.scope.name(end.ns) }), depth);
      return undefined;
    }
    this.hop(end.ns, msg('hop.decap', { dev: decap.ifname, vni, src: pkt.src, dst: pkt.dst }), depth);
    return { ns: end.ns, dev: decap.ifname };
  }

  /**
   * Follows a packet from `ns` (sent from there when pkt.iif is unset) until it reaches the namespace that
   * holds pkt.dst. Returns that namespace, or undefined when it goes no further (a hop says why).
   */
  async follow(ns: string, pkt: Packet, depth = 0): Promise<{ ns: string; dev: string } | undefined> {
    for (let step = 0; step < 32; step++) {
      const v = this.w.views.get(ns)!;
      const nat = await this.natTable(ns, familyOf(pkt.dst) === 6);
      const hook = pkt.iif ? 'PREROUTING' : 'OUTPUT';
      const dnat = walkNat(nat, hook, pkt, (ip) => this.w.owners.get(ip)?.ns === ns);
      const kp = dnat.dnat ? undefined : await this.kubeProxyNft(ns, familyOf(pkt.dst) === 6);
      const kpNat = kp && walkKubeProxyNft(kp, pkt);
      if (kpNat?.dnat) {
        const to = { ip: kpNat.dnat.ip, port: kpNat.dnat.port ?? pkt.dport };
        const hop = {
          family: familyOf(pkt.dst) === 6 ? 'ip6' : 'ip',
          chains: kpNat.chains.join(' > '),
          from: hostPort(pkt.dst, pkt.dport ?? '*'),
          to: hostPort(to.ip, to.port ?? '*'),
          kind: this.describe(to.ip),
          random: randomly(kpNat.choices),
          svc: serviceSaid(servicesOfNft(kp), pkt, to.port, !!kpNat.chains[1]?.startsWith('external-')),
        };
        this.hop(ns, msg('hop.dnatKp', hop), depth);
        this.natPoints.push({ ns, depth, kind: 'dnat', from: { ip: pkt.dst, port: pkt.dport }, to });
        pkt.dst = to.ip;
        if (to.port) pkt.dport = to.port;
      }
      const hp = dnat.dnat || kpNat?.dnat ? undefined : await this.nftHostPort(ns, pkt);
      if (hp) {
        const hop = {
          via: hp.via,
          from: hostPort(pkt.dst, pkt.dport ?? '*'),
          to: hostPort(hp.to.ip, hp.to.port),
          kind: this.describe(hp.to.ip),
        };
        this.hop(ns, msg('hop.dnatHp', hop), depth);
        this.natPoints.push({ ns, depth, kind: 'dnat', from: { ip: pkt.dst, port: pkt.dport }, to: hp.to });
        pkt.dst = hp.to.ip;
        pkt.dport = hp.to.port;
      }
      if (dnat.dnat) {
        const from = hostPort(pkt.dst, pkt.dport ?? '*');
        const to = hostPort(dnat.dnat.ip, dnat.dnat.port ?? pkt.dport ?? '*');
        const hop = {
          chains: dnat.chains.join(' > '),
          from,
          to,
          kind: this.describe(dnat.dnat.ip),
          random: randomly(dnat.choices),
          svc: serviceSaid(servicesOf(nat), pkt, dnat.dnat.port ?? pkt.dport, dnat.chains.includes('KUBE-NODEPORTS')),
        };
        this.hop(ns, msg('hop.dnat', hop), depth);
        this.natPoints.push({
          ns,
          depth,
          kind: 'dnat',
          from: { ip: pkt.dst, port: pkt.dport },
          to: { ip: dnat.dnat.ip, port: dnat.dnat.port ?? pkt.dport },
        });
        pkt.dst = dnat.dnat.ip;
        if (dnat.dnat.port) pkt.dport = dnat.dnat.port;
      }
      const owner = this.w.owners.get(pkt.dst);
      if (owner?.ns === ns) {
        const port = pkt.dport ? msg('hop.toPort', { port: pkt.dport }) : '';
        this.hop(ns, msg(ns === '' ? 'hop.ours' : 'hop.theirs', { ip: pkt.dst, ns: this.w.scope.name(ns), dev: owner.dev, port }), depth);
        return owner;
      }
      if (pkt.iif && !(await this.policyAllows(ns, pkt, depth))) return undefined;
      const r = await this.route(ns, pkt);
      if (isMsg(r)) {
        this.hop(ns, msg('hop.noRoute', { why: r }), depth);
        return undefined;
      }
      if (r.type && r.type !== 'unicast') {
        this.hop(ns, msg(r.type === 'local' ? 'hop.routeLocal' : 'hop.routeDropped', { dst: pkt.dst, type: r.type }), depth);
        return undefined;
      }
      const reason = this.routeReason(ns, r);
      const hop = {
        dst: pkt.dst,
        arrived: pkt.iif ? msg('hop.arrived', { iif: pkt.iif }) : '',
        via: r.gateway ? `via ${r.gateway} ` : '',
        dev: r.dev ?? '',
        reason: reason ? msg('hop.reason', { reason }) : '',
      } as const;
      this.hop(ns, msg('hop.route', hop), depth);
      if (!pkt.iif && pkt.src === '') pkt.src = r.prefsrc ?? '';
      const dnatted = this.natPoints.some((n) => n.ns === ns && n.kind === 'dnat');
      await this.snat(ns, pkt, r.dev!, dnatted, depth);
      const dev = linkByName(v.links, r.dev)!;
      const next = r.gateway ?? pkt.dst;
      this.bridged = undefined;
      const arrived = kind(dev) === 'vxlan' ? await this.vxlan(ns, dev, next, pkt, depth) : await this.l2(ns, r.dev!, next, depth, pkt);
      if (!arrived) return undefined;
      const b = this.bridged as { ns: string; at: number } | undefined;
      if (b && !(await this.policyAllows(b.ns, pkt, depth, b.at))) return undefined;
      ns = arrived.ns;
      pkt.iif = arrived.dev;
      pkt.mark = 0; // a mark does not cross into another namespace (veth scrubs it)
    }
    this.hop(ns, msg('hop.loop'), depth);
    return undefined;
  }
}

/** A namespace's conntrack table (its own: /proc/net follows the reader's network namespace). */
async function conntrack(ns: string): Promise<CtEntry[]> {
  const r = await (ns ? run('ip', ['netns', 'exec', ns, 'cat', '/proc/net/nf_conntrack']) : run('cat', ['/proc/net/nf_conntrack']));
  return r.code === 0 ? parseConntrack(r.stdout) : [];
}

/**
 * The reply's way back: at each NAT the request passed, in reverse order, the conntrack entry the request
 * made there — read from the live table when traffic has gone that way (`podwire lab` sends it), else
 * predicted and marked so. That entry is what turns a Service's reply back into one from its Cluster IP
 * (or NodeIP:nodePort / NodeIP:hostPort), and undoes masquerade on the way back to the client.
 */
async function replyHops(
  f: PathFinder,
  src: string,
  asked: { ip: string; port?: number },
  pkt: Packet,
  proto: string,
  ends: { server: string; client: string },
): Promise<Hop[]> {
  const hops: Hop[] = [];
  const hop = (ns: string, what: Msg, depth = 0) => hops.push({ ns, where: f.w.scope.name(ns), what, depth });
  const at = (ip: string, port?: number) => (port ? hostPort(ip, port) : ip);
  // To the source the server saw: the client's own, or the address a masquerade gave it.
  hop(ends.server, msg('reply.leaves', { at: at(pkt.dst, pkt.dport), src: pkt.src }));
  if (!f.natPoints.length) {
    hop(ends.client, msg('reply.noNat', { at: at(pkt.dst, pkt.dport) }));
    return hops;
  }
  for (const n of [...f.natPoints].reverse()) {
    if (n.kind === 'snat') {
      // Where a DNAT was made in the same namespace, its conntrack entry (below) tells the masquerade's undoing too.
      if (!f.natPoints.some((d) => d.ns === n.ns && d.kind === 'dnat')) hop(n.ns, await reverseSnat(n, proto), n.depth);
      continue;
    }
    // This client's own entry: another client's would show the same rewrite, but not this packet's.
    const live = (await conntrack(n.ns)).find(
      (e) =>
        e.proto === proto &&
        e.orig.src === src &&
        e.orig.dst === n.from.ip &&
        (n.from.port === undefined || e.orig.dport === n.from.port) &&
        e.reply.src === n.to.ip &&
        (n.to.port === undefined || e.reply.sport === n.to.port),
    );
    if (live) {
      const snat = live.reply.dst !== live.orig.src;
      const entry = {
        state: live.state ? msg('reply.state', { state: live.state }) : '',
        orig: at(live.orig.src, live.orig.sport),
        asked: at(live.orig.dst, live.orig.dport),
        answered: at(live.reply.src, live.reply.sport),
        to: at(n.to.ip, n.to.port),
        from: at(n.from.ip, n.from.port),
        snat: snat ? msg('reply.snat', { dst: at(live.reply.dst, live.reply.dport), src: at(live.orig.src, live.orig.sport) }) : '',
      } as const;
      hop(n.ns, msg('reply.live', entry), n.depth);
    } else {
      hop(n.ns, msg('reply.predicted', { to: at(n.to.ip, n.to.port), from: at(n.from.ip, n.from.port) }), n.depth);
    }
  }
  const first = f.natPoints.find((n) => n.kind === 'dnat')?.from ?? asked;
  hop(ends.client, msg('reply.sees', { at: at(first.ip, first.port) }));
  return hops;
}

/** A masquerade undone on the way back: from the live conntrack entry the request made there, else predicted. */
async function reverseSnat(n: NatPoint, proto: string): Promise<Msg> {
  const at = (ip: string, port?: number) => (port ? hostPort(ip, port) : ip);
  const live = (await conntrack(n.ns)).find(
    (e) =>
      e.proto === proto &&
      e.orig.src === n.from.ip &&
      e.orig.dst === n.dst!.ip &&
      (n.dst!.port === undefined || e.orig.dport === n.dst!.port) &&
      e.reply.dst === n.to.ip,
  );
  if (!live) return msg('reply.predictedSnat', { to: n.to.ip, from: n.from.ip });
  return msg('reply.liveSnat', {
    state: live.state ? msg('reply.state', { state: live.state }) : '',
    orig: at(live.orig.src, live.orig.sport),
    asked: at(live.orig.dst, live.orig.dport),
    seen: at(live.reply.dst, live.reply.dport),
  });
}

/** ", one of N endpoints chosen at random" when there is a choice. */
const randomly = (n: number) => (n > 1 ? msg('hop.random', { n }) : '');

/**
 * The Service a kube-proxy DNAT serves, told with the ports Kubernetes names: asked at its Cluster IP:port,
 * or (`nodePort`: the walk went through the nodePorts) at one of the node's own addresses on its nodePort;
 * targetPort is where the DNAT sends.
 */
function serviceSaid(services: readonly ServiceView[], pkt: Packet, targetPort: number | undefined, nodePort: boolean): Msg[] {
  const byVip = services.find((v) => v.clusterIP === pkt.dst && v.port === pkt.dport && v.proto === pkt.proto);
  const byNodePort = byVip || !nodePort ? undefined : services.find((v) => v.nodePort === pkt.dport && v.proto === pkt.proto);
  const s = byVip ?? byNodePort;
  if (!s || targetPort === undefined) return [];
  const p = { name: s.name, clusterIP: s.clusterIP, port: s.port, targetPort, nodePort: s.nodePort ?? '' };
  return [msg(byVip ? 'hop.service' : 'hop.serviceNodePort', p)];
}

/** An address with a port, as people write it: 10.96.0.10:80, [fd00:10:96::10]:80. */
const hostPort = joinHostPort;

/** DST may carry a port: "10.96.0.10:80", "[fd00:10:96::10]:80"; an IPv6 address without one is written bare. */
export function parseTarget(s: string): { ip: string; port?: number } {
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(s);
  const [host = '', portText, ...rest] = bracketed ? [bracketed[1]!, bracketed[2]] : s.split(':').length > 2 ? [s] : s.split(':');
  const ip = parseIP(host);
  if (!ip || rest.length) throw new Error(t('err.notAddress', { s }));
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535))
    throw new Error(t('err.port', { port: String(portText) }));
  return { ip: formatIP(ip), port };
}

/**
 * The path from SRC to DST. `spoof`: the packet leaves SRC's namespace with this source address instead
 * of its own (what a pod with CAP_NET_RAW could send), to see where it is stopped.
 */
export async function findPath(w: World, src: string, dst: string, proto = 'tcp', spoof?: string): Promise<PathResult> {
  const s = parseTarget(src);
  const d = parseTarget(dst);
  const from = w.owners.get(s.ip);
  if (!from) throw new Error(t('err.nowhere', { ip: s.ip, scope: w.scope.what }));
  const forged = spoof === undefined ? undefined : parseIP(spoof);
  if (spoof !== undefined && (!forged || forged.family !== familyOf(s.ip))) throw new Error(t('err.badSpoof', { ip: spoof, src: s.ip }));
  const f = new PathFinder(w);
  const pkt: Packet = { src: forged ? formatIP(forged) : s.ip, dst: d.ip, proto, dport: d.port };
  const srcIP = pkt.src;
  const end = await f.follow(from.ns, pkt);
  // No interface has it, but a nat table names it: a Service's virtual IP.
  const virtual = !w.owners.has(d.ip) && (await f.natMentions(d.ip));
  const dstKind = virtual ? clusterIPHint() : f.describe(d.ip);
  return {
    src: srcIP,
    dst: d.ip,
    port: d.port,
    srcKind: f.describe(s.ip),
    dstKind,
    hops: f.hops,
    reply: end ? await replyHops(f, srcIP, d, pkt, proto, { server: end.ns, client: from.ns }) : [],
    delivered: !!end,
    end: end
      ? msg('path.end', { at: pkt.dport ? hostPort(pkt.dst, pkt.dport) : pkt.dst, ns: w.scope.name(end.ns), kind: f.describe(pkt.dst) })
      : msg(virtual && pkt.dst === d.ip ? 'path.clusterIPEnd' : 'path.lastHop'),
    finalDst: pkt.dst,
    finalPort: pkt.dport,
  };
}

export function renderPath(p: PathResult): string {
  const out = [
    t('path.from', { ip: p.src, kind: p.srcKind }),
    t('path.to', { ip: p.port ? hostPort(p.dst, p.port) : p.dst, kind: p.dstKind }),
    '',
  ];
  const width = Math.max(...p.hops.map((h) => h.where.length), 4);
  p.hops.forEach((h, i) =>
    out.push(`${String(i + 1).padStart(3)}. ${'  '.repeat(h.depth)}${h.where.padEnd(width)}  ${t(h.what.id, h.what.p)}`),
  );
  out.push('', t(p.delivered ? 'path.delivered' : 'path.notDelivered', { end: p.end }));
  if (p.reply.length) {
    out.push('', t('path.back'));
    const w2 = Math.max(...p.reply.map((h) => h.where.length), 4);
    p.reply.forEach((h, i) => out.push(`${String(i + 1).padStart(3)}. ${h.where.padEnd(w2)}  ${t(h.what.id, h.what.p)}`));
  }
  return out.join('\n') + '\n';
}

/** A path as `path --json` prints it: every message as its id and values (`what`), and in words beside it. */
export function pathJson(p: PathResult): object {
  const words = (m: Msg) => t(m.id, m.p);
  const hops = (hs: readonly Hop[]) => hs.map((h) => ({ ...h, text: words(h.what) }));
  return {
    ...p,
    srcKind: words(p.srcKind),
    dstKind: words(p.dstKind),
    end: words(p.end),
    kinds: { src: p.srcKind, dst: p.dstKind, end: p.end },
    hops: hops(p.hops),
    reply: hops(p.reply),
  };
}
