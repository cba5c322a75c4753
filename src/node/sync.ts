// `podwire peers sync`: read the kernel's state with `ip -j` (and `bridge -j` for the FDB), compute the
// difference from the node list, apply it in at most three batches. A re-sync that finds nothing to do
// starts two processes (one with host-gw) and changes nothing.
import { spawned } from '../run.js';
import { type BatchFailure, forceBatch } from '../kernel/run.js';
import { type Link, type State, readState } from '../kernel/state.js';
import { parseCidr } from '../net/ip.js';
import { type Cluster, type NodeEntry, selfNode, usesVxlan } from './cluster.js';
import {
  type Peer,
  type PeerDiff,
  type PeerState,
  ROUTE_PROTO,
  type Underlay,
  desiredState,
  diffBatches,
  diffPeers,
  diffSize,
  peersOf,
} from './peers.js';

/** The link that holds `nodeIP`, and its connected IPv4 subnets. */
export function findUnderlay(links: readonly Link[], self: NodeEntry): Underlay & { mtu: number } {
  const link = links.find((l) => l.addr_info?.some((a) => a.family === 'inet' && a.local === self.nodeIP));
  if (!link)
    throw new Error(`${self.name}'s Node IP ${self.nodeIP} is not an address of this machine (wrong --node, or run this on that node)`);
  const subnets = (link.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => parseCidr(`${a.local}/${a.prefixlen}`)!);
  return { dev: link.ifname, subnets, mtu: link.mtu };
}

export interface KernelPeers {
  links: Link[];
  ours: PeerState;
  /** Destinations of main-table routes someone else made. */
  foreign: Set<string>;
}

/** One `ip -j -batch` (links, routes, the VXLAN device's neighbours) and, with VXLAN, one `bridge -j`, side by side. */
export async function readPeers(device: string, withVxlan: boolean): Promise<KernelPeers> {
  const state = await readState(undefined, {
    routes: 'table main',
    ...(withVxlan ? { neighs: `dev ${device} nud permanent`, fdb: `dev ${device}` } : {}),
  });
  return kernelPeers(device, state);
}

/**
 * Which of the kernel's entries are podwire's (routes with ROUTE_PROTO; the VXLAN device's permanent
 * neighbours and its FDB entries with a destination) and which routes someone else made. Pure: status
 * feeds it what it has read already. Neighbours and FDB entries of other devices are ignored.
 */
export function kernelPeers(
  device: string,
  { links, routes, neighs, fdb }: Pick<State, 'links' | 'routes' | 'neighs' | 'fdb'>,
): KernelPeers {
  const ours: PeerState = { routes: [], neighs: [], fdb: [] };
  const foreign = new Set<string>();
  for (const r of routes) {
    if (r.protocol !== String(ROUTE_PROTO)) {
      if (!r.metric) foreign.add(r.dst);
      continue;
    }
    ours.routes.push({ dst: r.dst, via: r.gateway ?? '', dev: r.dev ?? '', onlink: r.flags?.includes('onlink') ?? false });
  }
  if (links.some((l) => l.ifname === device)) {
    for (const n of neighs)
      if (n.lladdr && (n.dev ?? device) === device && (!n.state || n.state.includes('PERMANENT')))
        ours.neighs.push({ ip: n.dst, mac: n.lladdr });
    for (const f of fdb) if (f.dst && (f.ifname ?? device) === device) ours.fdb.push({ mac: f.mac, dst: f.dst });
  }
  return { links, ours, foreign };
}

export interface SyncReport {
  peers: Peer[];
  diff: PeerDiff;
  changes: number;
  failures: BatchFailure[];
  processes: number;
  ms: number;
}

/** Applies a diff: [ip] routes out + neighbours in, [bridge] FDB, [ip] neighbours out + routes in. */
export async function applyPeerDiff(d: PeerDiff, device: string): Promise<BatchFailure[]> {
  const b = diffBatches(d, device);
  return [...(await forceBatch('ip', b.ip1)), ...(await forceBatch('bridge', b.bridge)), ...(await forceBatch('ip', b.ip2))];
}

/** Reconciles this node's routes, FDB and neighbour entries with the cluster's node list. */
export async function syncPeers(c: Cluster, nodeName: string): Promise<SyncReport> {
  const started = performance.now();
  const before = spawned.count;
  const self = selfNode(c, nodeName);
  const k = await readPeers(c.device, usesVxlan(c));
  const underlay = findUnderlay(k.links, self);
  const peers = peersOf(c, self, underlay);
  if (peers.some((p) => p.mode === 'vxlan') && !k.links.some((l) => l.ifname === c.device)) {
    throw new Error(`the VXLAN device ${c.device} does not exist: run "podwire node up" first`);
  }
  const diff = diffPeers(k.ours, desiredState(peers, underlay, c.device), k.foreign);
  const failures = diffSize(diff) ? await applyPeerDiff(diff, c.device) : [];
  return { peers, diff, changes: diffSize(diff), failures, processes: spawned.count - before, ms: performance.now() - started };
}
