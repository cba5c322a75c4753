// One namespace as status, path and diagram see it: what the kernel holds there (kernel/state.ts: links
// with addresses, IPv4 and IPv6 routes, neighbours, the ids of other namespaces, the FDB), read in three processes.
// Everything explore says comes from this, never from what podwire meant to do.
import { ROUTE_PROTO } from '../node/peers.js';
import { type Link, type Route, type State, kind, linkByName, readState } from '../kernel/state.js';

export interface NsView extends State {
  /** The namespace's name in /run/netns; '' is this process's own. */
  name: string;
}

/** Reads a namespace: a name from /run/netns, or '' for this process's own. */
export async function readNs(name = ''): Promise<NsView> {
  const state = await readState(name ? `/run/netns/${name}` : undefined, {
    routes: 'table main',
    routes6: true,
    neighs: '',
    nsids: true,
    fdb: '',
  });
  return { name, ...state };
}

/** The namespace holding a veth's other end: its /run/netns name, 'nsid N' if it has none, or undefined. */
export function peerNs(v: NsView, l: Link): string | undefined {
  if (l.link_netnsid === undefined) return undefined;
  return v.nsids.find((n) => n.nsid === l.link_netnsid)?.name ?? `nsid ${l.link_netnsid}`;
}

/** A route podwire made to another node's slice, and where the kernel's entries lead it. */
export interface PeerPath {
  route: Route;
  mode: 'vxlan' | 'host-gw';
  /** The VTEP's MAC (vxlan), from the neighbour entry of the route's gateway. */
  mac?: string;
  /** Where the traffic goes: the FDB entry of that MAC (vxlan), or the route's gateway (host-gw). */
  nodeIP?: string;
}

/** podwire's routes to other nodes' podCIDRs, each with the backend and Node IP the kernel's entries lead to. */
export function peerPaths(v: NsView): PeerPath[] {
  return v.routes
    .filter((r) => r.protocol === String(ROUTE_PROTO))
    .map((route) => {
      if (kind(linkByName(v.links, route.dev)) !== 'vxlan') return { route, mode: 'host-gw', nodeIP: route.gateway };
      const mac = v.neighs.find((n) => n.dst === route.gateway && n.dev === route.dev)?.lladdr;
      const nodeIP = mac ? v.fdb.find((f) => f.ifname === route.dev && f.mac === mac && f.dst)?.dst : undefined;
      return { route, mode: 'vxlan', mac, nodeIP };
    });
}
