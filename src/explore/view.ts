// What the kernel holds in one network namespace, read in two processes: `ip -j -d -batch` (links with
// addresses, IPv4 routes, neighbours, the ids of other namespaces) and `bridge -j fdb show`. status, path
// and diagram explain the network from this, never from what podwire meant to do.
import { CniError, Code } from '../cni/errors.js';
import { ipJson } from '../kernel/run.js';
import { ROUTE_PROTO } from '../node/peers.js';
import { run } from '../run.js';

export interface Link {
  ifindex: number;
  ifname: string;
  mtu: number;
  address?: string;
  master?: string;
  flags?: string[];
  operstate?: string;
  /** The namespace (by id, see nsids) holding the other end of a veth. */
  link_netnsid?: number;
  /** The other end's ifindex (in link_netnsid's namespace, or this one). */
  link_index?: number;
  addr_info?: { family: string; local: string; prefixlen: number }[];
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string; info_slave_data?: Record<string, unknown> };
}

export interface RouteEntry {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  flags?: string[];
  type?: string;
  metric?: number;
}

export interface NeighEntry {
  dst: string;
  dev: string;
  lladdr?: string;
  state?: string[];
}

export interface FdbEntry {
  mac: string;
  ifname: string;
  master?: string;
  dst?: string;
  flags?: string[];
  state?: string;
  vlan?: number;
}

export interface NsView {
  /** The namespace's name; '' is this process's own. */
  name: string;
  links: Link[];
  routes: RouteEntry[];
  neigh: NeighEntry[];
  /** Other namespaces this one has ids for (veth peers), with their /run/netns names when they have one. */
  nsids: { nsid: number; name?: string }[];
  fdb: FdbEntry[];
}

/** Reads a namespace: a name from /run/netns, or '' for this process's own. */
export async function readNs(name = ''): Promise<NsView> {
  const netns = name ? `/run/netns/${name}` : undefined;
  const [[links = [], routes = [], neigh = [], nsids = []], fdb] = await Promise.all([
    ipJson(['addr show', 'route show table main', 'neigh show', 'netns list-id'], netns),
    run('bridge', [...(name ? ['-n', name] : []), '-j', 'fdb', 'show']),
  ]);
  if (fdb.code !== 0) throw new CniError(Code.Kernel, `bridge fdb show: ${fdb.stderr.trim()}`);
  return {
    name,
    links: links as Link[],
    routes: routes as RouteEntry[],
    neigh: neigh as NeighEntry[],
    nsids: nsids as NsView['nsids'],
    fdb: JSON.parse(fdb.stdout || '[]') as FdbEntry[],
  };
}

export const linkByName = (v: NsView, name: string | undefined): Link | undefined => v.links.find((l) => l.ifname === name);
export const kind = (l: Link | undefined): string | undefined => l?.linkinfo?.info_kind;
export const isUp = (l: Link | undefined): boolean => !!l?.flags?.includes('UP');
export const v4Addrs = (l: Link | undefined): string[] =>
  (l?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);

/** The namespace holding a veth's other end: its /run/netns name, 'nsid N' if it has none, or undefined. */
export function peerNs(v: NsView, l: Link): string | undefined {
  if (l.link_netnsid === undefined) return undefined;
  return v.nsids.find((n) => n.nsid === l.link_netnsid)?.name ?? `nsid ${l.link_netnsid}`;
}

export interface PeerRoute {
  route: RouteEntry;
  mode: 'vxlan' | 'host-gw';
  /** The VTEP's MAC (vxlan), from the neighbour entry of the route's gateway. */
  mac?: string;
  /** Where the traffic goes: the FDB entry of that MAC (vxlan), or the route's gateway (host-gw). */
  nodeIP?: string;
}

/** podwire's routes to other nodes' podCIDRs, each with the backend and Node IP the kernel's entries lead to. */
export function peerRoutes(v: NsView): PeerRoute[] {
  return v.routes
    .filter((r) => r.protocol === String(ROUTE_PROTO))
    .map((route) => {
      if (kind(linkByName(v, route.dev)) !== 'vxlan') return { route, mode: 'host-gw', nodeIP: route.gateway };
      const mac = v.neigh.find((n) => n.dst === route.gateway && n.dev === route.dev)?.lladdr;
      const nodeIP = mac ? v.fdb.find((f) => f.ifname === route.dev && f.mac === mac && f.dst)?.dst : undefined;
      return { route, mode: 'vxlan', mac, nodeIP };
    });
}
