// `podwire peers sync`: read the kernel's state with `ip -j` (and `bridge -j` for the FDB), compute the
// difference from the node list, apply it in at most three batches — per address family, side by side:
// a dual-stack node does what an IPv4 one does, once for IPv4 and once for IPv6. A re-sync that finds
// nothing to do starts two processes per family (one with host-gw) and changes nothing, plus, with
// VXLAN, one `nft` that sets the VXLAN port's node sets again (guard/vxlan.ts: kept on every sync, so a
// table someone emptied is mended by the next one).
import { spawned } from '../runtime/run.js';
import { installed } from '../kernel/tools.js';
import { syncVxlanNodes } from '../guard/vxlan.js';
import { type BatchFailure, forceBatch } from '../kernel/run.js';
import { type Link, type State, readState } from '../kernel/state.js';
import { familyOf, formatIP, parseCidr, parseIP } from '../net/ip.js';
import { type Cluster, type Family, type Net, type NodeEntry, familyName, nodeIn, usesVxlan } from './cluster.js';
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

/** The link that holds `nodeIP`, and its connected subnets of that family. */
export function findUnderlay(links: readonly Link[], self: NodeEntry): Underlay & { mtu: number } {
  const ip = parseIP(self.nodeIP)!;
  const fam = ip.family === 4 ? 'inet' : 'inet6';
  const same = (a: { family: string; local: string }) => a.family === fam && parseIP(a.local)?.value === ip.value;
  const link = links.find((l) => l.addr_info?.some(same));
  if (!link)
    throw new Error(`${self.name}'s Node IP ${self.nodeIP} is not an address of this machine (wrong --node, or run this on that node)`);
  const subnets = (link.addr_info ?? [])
    .filter((a) => a.family === fam && !a.local.startsWith('fe80:'))
    .map((a) => parseCidr(`${a.local}/${a.prefixlen}`)!);
  return { dev: link.ifname, subnets, mtu: link.mtu };
}

export interface KernelPeers {
  links: Link[];
  ours: PeerState;
  /** Destinations of main-table routes someone else made. */
  foreign: Set<string>;
}

/**
 * One family's entries: one `ip -j -batch` (links, routes, the VXLAN device's neighbours; `ip -6` for
 * IPv6) and, with VXLAN, one `bridge -j`, side by side.
 */
export async function readPeers(net: Pick<Net, 'device' | 'family'>, withVxlan: boolean): Promise<KernelPeers> {
  const state = await readState(undefined, {
    routes: 'table main',
    family: net.family,
    ...(withVxlan ? { neighs: `dev ${net.device} nud permanent`, fdb: `dev ${net.device}` } : {}),
  });
  return kernelPeers(net.device, state);
}

/**
 * Which of the kernel's entries are podwire's (routes with ROUTE_PROTO; the VXLAN device's permanent
 * neighbours and its FDB entries with a destination) and which routes someone else made. Pure: status
 * feeds it what it has read already. Neighbours and FDB entries of other devices are ignored.
 */
export function kernelPeers(
  device: string,
  { links, routes, neighs, fdb }: Pick<State, 'links' | 'routes' | 'neighs' | 'fdb'>,
  family?: Family,
): KernelPeers {
  const ours: PeerState = { routes: [], neighs: [], fdb: [] };
  const foreign = new Set<string>();
  // A view of both families (status) asks for one: an address's family is whether it has a colon.
  const mine = (addr: string) => family === undefined || familyOf(addr) === family;
  for (const r of routes) {
    if (!mine(r.dst === 'default' ? (r.gateway ?? '') : r.dst)) continue;
    if (r.protocol !== String(ROUTE_PROTO)) {
      // Only a route `route replace` would replace is in the way: IPv4's metric 0, IPv6's default 1024.
      if (!r.metric || (familyOf(r.dst) === 6 && r.metric === 1024)) foreign.add(r.dst);
      continue;
    }
    ours.routes.push({ dst: r.dst, via: r.gateway ?? '', dev: r.dev ?? '', onlink: r.flags?.includes('onlink') ?? false });
  }
  if (links.some((l) => l.ifname === device)) {
    for (const n of neighs)
      if (n.lladdr && mine(n.dst) && (n.dev ?? device) === device && (!n.state || n.state.includes('PERMANENT')))
        ours.neighs.push({ ip: n.dst, mac: n.lladdr });
    for (const f of fdb) if (f.dst && mine(f.dst) && (f.ifname ?? device) === device) ours.fdb.push({ mac: f.mac, dst: canonical(f.dst) });
  }
  return { links, ours, foreign };
}

/** An address as podwire writes it (bridge prints IPv6 as given; a Node IP from a file may be written otherwise). */
const canonical = (ip: string): string => {
  const p = parseIP(ip);
  return p ? formatIP(p) : ip;
};

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

/** One family: read, diff, apply. */
async function syncNet(c: Cluster, net: Net, nodeName: string): Promise<Omit<SyncReport, 'processes' | 'ms'>> {
  const self = nodeIn(net, nodeName);
  const k = await readPeers(net, usesVxlan(c));
  const underlay = findUnderlay(k.links, self);
  const peers = peersOf(c.backend, net, self, underlay);
  if (peers.some((p) => p.mode === 'vxlan') && !k.links.some((l) => l.ifname === net.device)) {
    throw new Error(`the ${familyName(net.family)} VXLAN device ${net.device} does not exist: run "podwire node up" first`);
  }
  const diff = diffPeers(k.ours, desiredState(peers, underlay, net.device), k.foreign);
  const failures = diffSize(diff) ? await applyPeerDiff(diff, net.device) : [];
  return { peers, diff, changes: diffSize(diff), failures };
}

const emptyDiff = (): PeerDiff => ({ routeDel: [], routeSet: [], neighDel: [], neighSet: [], fdbDel: [], fdbSet: [], conflicts: [] });

/** Reconciles this node's routes, FDB and neighbour entries with the cluster's node list, every family side by side. */
export async function syncPeers(c: Cluster, nodeName: string): Promise<SyncReport> {
  const started = performance.now();
  const before = spawned.count;
  // The VXLAN port's node set follows the node list, side by side with the families' syncs.
  const nodes =
    usesVxlan(c) && installed('nft')
      ? syncVxlanNodes(
          c.port,
          c.nets.flatMap((n) => n.nodes.map((x) => x.nodeIP)),
        )
      : undefined;
  const [parts] = await Promise.all([Promise.all(c.nets.map((net) => syncNet(c, net, nodeName))), nodes]);
  const diff = emptyDiff();
  for (const p of parts) for (const k of Object.keys(diff) as (keyof PeerDiff)[]) (diff[k] as unknown[]).push(...p.diff[k]);
  return {
    peers: parts.flatMap((p) => p.peers),
    diff,
    changes: parts.reduce((n, p) => n + p.changes, 0),
    failures: parts.flatMap((p) => p.failures),
    processes: spawned.count - before,
    ms: performance.now() - started,
  };
}
