// How this node reaches the other nodes' pods, as pure data: the entries the node list asks for, the
// difference from what the kernel has, and the `ip`/`bridge` batch lines that close it. Reading and
// applying live in sync.ts; everything here is tested without a kernel.
//
// Per peer and backend:
//   host-gw  route  peerPodCIDR via peerNodeIP dev <underlay>                 (same L2 segment needed)
//   vxlan    neigh  peerVTEPIP lladdr peerVTEPMac dev <vxlan> nud permanent  (no ARP over the overlay)
//            fdb    peerVTEPMac dst peerNodeIP dev <vxlan> self permanent     (where to send the frame)
//            route  peerPodCIDR via peerVTEPIP dev <vxlan> onlink
// Added in that order, removed in reverse (as flannel does), so a route never points at a VTEP the
// kernel cannot resolve. Our routes carry protocol ROUTE_PROTO: that is how we know they are ours.
import { type Cidr, cidrContains, parseIP } from '../net/ip.js';
import type { Backend, Family, Net, NodeEntry } from './cluster.js';

/** rtnetlink protocol number marking podwire's routes (unassigned in iproute2's rt_protos). */
export const ROUTE_PROTO = 112;

export type PeerMode = 'host-gw' | 'vxlan';

export interface PeerRoute {
  dst: string;
  via: string;
  dev: string;
  onlink: boolean;
}
export interface Neigh {
  ip: string;
  mac: string;
}
export interface Fdb {
  mac: string;
  dst: string;
}

/** Entries of one kind of state; for the kernel's side, only those that are ours. */
export interface PeerState {
  routes: PeerRoute[];
  neighs: Neigh[];
  fdb: Fdb[];
}

export interface Peer {
  node: NodeEntry;
  mode: PeerMode;
  family: Family;
}

export interface Underlay {
  /** The link holding this node's Node IP. */
  dev: string;
  /** Its connected subnets: peers inside one are reachable without a gateway. */
  subnets: Cidr[];
}

/**
 * Which backend carries one family's traffic to each peer. auto: host-gw when the peer's Node IP of that
 * family is on a connected subnet, so a dual-stack peer may be reached directly in one family and
 * through VXLAN in the other.
 */
export function peersOf(backend: Backend, net: Net, self: NodeEntry, underlay: Underlay): Peer[] {
  return net.nodes
    .filter((n) => n.name !== self.name)
    .map((node) => {
      const family = net.family;
      if (backend !== 'auto') return { node, mode: backend, family };
      const ip = parseIP(node.nodeIP)!;
      return { node, mode: underlay.subnets.some((s) => cidrContains(s, ip)) ? 'host-gw' : 'vxlan', family };
    });
}

export function desiredState(peers: readonly Peer[], underlay: Underlay, device: string): PeerState {
  const s: PeerState = { routes: [], neighs: [], fdb: [] };
  for (const { node, mode } of peers) {
    if (mode === 'host-gw') {
      s.routes.push({ dst: node.podCIDR, via: node.nodeIP, dev: underlay.dev, onlink: false });
      continue;
    }
    s.neighs.push({ ip: node.vtepIP, mac: node.vtepMac });
    s.fdb.push({ mac: node.vtepMac, dst: node.nodeIP });
    s.routes.push({ dst: node.podCIDR, via: node.vtepIP, dev: device, onlink: true });
  }
  return s;
}

export interface PeerDiff {
  routeDel: PeerRoute[];
  routeSet: PeerRoute[];
  neighDel: Neigh[];
  neighSet: Neigh[];
  fdbDel: Fdb[];
  fdbSet: Fdb[];
  /** Desired routes not applied because a route we did not make already covers that destination. */
  conflicts: PeerRoute[];
}

const same = <T extends object>(a: T, b: T): boolean => (Object.keys(a) as (keyof T)[]).every((k) => a[k] === b[k]);

/**
 * What to change so `current` (ours, as read from the kernel) becomes `desired`. Routes are keyed by
 * destination, neighbours by address (`replace` overwrites a changed MAC), FDB entries by MAC and
 * destination (a peer with a new Node IP gets its old entry deleted, not a second one). `foreign` holds
 * destinations of routes someone else made: we never replace those.
 */
export function diffPeers(current: PeerState, desired: PeerState, foreign: ReadonlySet<string> = new Set()): PeerDiff {
  const d: PeerDiff = { routeDel: [], routeSet: [], neighDel: [], neighSet: [], fdbDel: [], fdbSet: [], conflicts: [] };
  const byKey = <T>(xs: readonly T[], key: (x: T) => string) => new Map(xs.map((x) => [key(x), x]));

  const routes = byKey(current.routes, (r) => r.dst);
  const wantRoutes = byKey(desired.routes, (r) => r.dst);
  for (const r of current.routes) if (!wantRoutes.has(r.dst)) d.routeDel.push(r);
  for (const r of desired.routes) {
    const have = routes.get(r.dst);
    if (have && same(have, r)) continue;
    if (!have && foreign.has(r.dst)) d.conflicts.push(r);
    else d.routeSet.push(r);
  }

  const neighs = byKey(current.neighs, (n) => n.ip);
  const wantNeighs = byKey(desired.neighs, (n) => n.ip);
  for (const n of current.neighs) if (!wantNeighs.has(n.ip)) d.neighDel.push(n);
  for (const n of desired.neighs) if (neighs.get(n.ip)?.mac !== n.mac) d.neighSet.push(n);

  const fdbKey = (f: Fdb) => `${f.mac} ${f.dst}`;
  const fdb = byKey(current.fdb, fdbKey);
  const wantFdb = byKey(desired.fdb, fdbKey);
  for (const f of current.fdb) if (!wantFdb.has(fdbKey(f))) d.fdbDel.push(f);
  for (const f of desired.fdb) if (!fdb.has(fdbKey(f))) d.fdbSet.push(f);
  return d;
}

export const diffSize = (d: PeerDiff): number =>
  d.routeDel.length + d.routeSet.length + d.neighDel.length + d.neighSet.length + d.fdbDel.length + d.fdbSet.length;

const routeLine = (verb: 'replace' | 'del', r: PeerRoute) =>
  `route ${verb} ${r.dst} via ${r.via} dev ${r.dev}${r.onlink ? ' onlink' : ''} proto ${ROUTE_PROTO}`;

/**
 * The diff as three batches, run in this order: [ip] routes out, neighbours in; [bridge] FDB out and in;
 * [ip] neighbours out, routes in. For any one peer that is neighbour, FDB, route when it comes and route,
 * FDB, neighbour when it goes, at a constant three processes however many peers change.
 */
export function diffBatches(d: PeerDiff, device: string): { ip1: string[]; bridge: string[]; ip2: string[] } {
  return {
    ip1: [
      ...d.routeDel.map((r) => routeLine('del', r)),
      ...d.neighSet.map((n) => `neigh replace ${n.ip} lladdr ${n.mac} dev ${device} nud permanent`),
    ],
    bridge: [
      ...d.fdbDel.map((f) => `fdb del ${f.mac} dev ${device} dst ${f.dst} self`),
      ...d.fdbSet.map((f) => `fdb append ${f.mac} dev ${device} dst ${f.dst} self permanent`),
    ],
    ip2: [...d.neighDel.map((n) => `neigh del ${n.ip} dev ${device}`), ...d.routeSet.map((r) => routeLine('replace', r))],
  };
}
