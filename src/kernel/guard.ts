// What keeps a pod network off the node's own: a pod subnet must not overlap a network the node is already
// on, nor hold one of its addresses or its default gateway. Otherwise the bridge's connected route fights
// the uplink's (or the pods' gateway takes an address the node's traffic goes to) and the node loses part
// of its network. Pure: callers read the state (plugin: when it makes the bridge or gives it a new
// gateway; node up; doctor) and say what the subnet is in their own words.
import { type Cidr, type IP, cidrContains, formatCidr, formatIP, parseCidr, parseIP } from '../net/ip.js';
import type { Link, Route } from './state.js';

/** One network the node is on: an address with its prefix, on a link. */
export interface NodeNet {
  dev: string;
  /** "192.168.50.11/24" */
  address: string;
  net: Cidr;
}

const overlaps = (a: Cidr, b: Cidr): boolean => a.family === b.family && a.first <= b.last && b.first <= a.last;

/**
 * The node's networks of a family, on every link but `skip` (the bridge, whose addresses are the pods'
 * gateways). Left out: IPv6 link-local addresses (every link has one, in fe80::/64), and a host address
 * on a VXLAN device that is the network address of `subnet` itself — the VTEP address podwire (and
 * flannel) put there, which is never a pod's or the gateway's.
 */
export function nodeNets(links: readonly Link[], subnet: Cidr, skip: readonly string[]): NodeNet[] {
  const fam = subnet.family === 4 ? 'inet' : 'inet6';
  const out: NodeNet[] = [];
  for (const l of links) {
    if (skip.includes(l.ifname)) continue;
    for (const a of l.addr_info ?? []) {
      if (a.family !== fam || a.local.toLowerCase().startsWith('fe80:')) continue;
      const net = parseCidr(`${a.local}/${a.prefixlen}`);
      if (!net) continue;
      const host = a.prefixlen === (subnet.family === 4 ? 32 : 128);
      if (host && net.ip === subnet.first && l.linkinfo?.info_kind === 'vxlan') continue;
      out.push({ dev: l.ifname, address: `${a.local}/${a.prefixlen}`, net });
    }
  }
  return out;
}

/**
 * Why `subnet` would take something of the node's, in words ("overlaps 192.168.50.0/24 on eth0 (the
 * node's address 192.168.50.11/24)"); undefined when it is clear. `routes`: the node's default routes,
 * whose gateways must stay reachable by the uplink.
 */
export function subnetClash(subnet: Cidr, links: readonly Link[], routes: readonly Route[], skip: readonly string[]): string | undefined {
  for (const n of nodeNets(links, subnet, skip)) {
    if (overlaps(subnet, n.net)) {
      const ip: IP = { family: subnet.family, value: n.net.ip };
      const holds = cidrContains(subnet, ip) ? `, and holds the node's address ${formatIP(ip)}` : '';
      return `overlaps ${formatCidr(n.net)}, a network the node is on (${n.dev} has ${n.address})${holds}`;
    }
  }
  for (const r of routes) {
    const gw = r.gateway !== undefined ? parseIP(r.gateway) : undefined;
    if ((r.dst === 'default' || r.dst === '0.0.0.0/0' || r.dst === '::/0') && gw && cidrContains(subnet, gw)) {
      return `holds the node's default gateway ${formatIP(gw)}${r.dev ? ` (via ${r.dev})` : ''}`;
    }
  }
  return undefined;
}
