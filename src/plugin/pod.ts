// The pod's side: its addresses and routes from the IPAM result, and the one `ip -batch` inside its
// namespace that sets them (lo up, address, eth0 up, routes); forwarding on the node meanwhile.
import { CniError, Code } from '../cni/errors.js';
import type { Result, Route } from '../cni/types.js';
import { type Cidr, type IP, familyOf, formatIP, parseCidr, parseIP } from '../net/ip.js';
import { podLines } from '../kernel/links.js';
import type { PendingBatch } from '../kernel/run.js';
import { FORWARDING_STEP, ensureSysctl } from '../kernel/sysctl.js';
import type { Step } from '../kernel/step.js';
import { timed } from '../runtime/profile.js';
import { type BatchRecord, apply } from './host.js';

export interface PodAddress {
  /** As in the result: "10.244.1.5/24". */
  address: string;
  ip: IP;
  cidr: Cidr;
  gateway: IP;
}

const DEFAULT_DST = { 4: '0.0.0.0/0', 6: '::/0' } as const;

/** The IPAM result's addresses with their gateways (a delegated IPAM may omit one: use the first address). */
export function podAddresses(result: Result): PodAddress[] {
  if (!result.ips?.length) throw new CniError(Code.Delegate, 'IPAM returned no IP address');
  return result.ips.map((ip) => {
    const cidr = parseCidr(ip.address);
    if (!cidr) throw new CniError(Code.Delegate, `IPAM returned an invalid address "${ip.address}"`);
    const gw = ip.gateway !== undefined ? parseIP(ip.gateway) : { family: cidr.family, value: cidr.first + 1n };
    if (!gw) throw new CniError(Code.Delegate, `IPAM returned an invalid gateway "${ip.gateway}"`);
    return { address: ip.address, ip: { family: cidr.family, value: cidr.ip }, cidr, gateway: gw };
  });
}

/** Default route per family (when isDefaultGateway) plus IPAM routes, deduplicated by destination. */
export function podRoutes(addrs: PodAddress[], ipamRoutes: Route[], isDefaultGateway: boolean): Route[] {
  const routes = new Map<string, Route>();
  for (const a of addrs) {
    if (isDefaultGateway && !routes.has(DEFAULT_DST[a.cidr.family])) {
      routes.set(DEFAULT_DST[a.cidr.family], { dst: DEFAULT_DST[a.cidr.family], gw: formatIP(a.gateway) });
    }
  }
  for (const r of ipamRoutes) {
    const family = familyOf(r.dst);
    const gw = r.gw ?? addrs.find((a) => a.cidr.family === family)?.gateway;
    routes.set(r.dst, { dst: r.dst, gw: typeof gw === 'string' ? gw : gw && formatIP(gw) });
  }
  return [...routes.values()];
}

/** Inside the pod: lo, address, eth0 up, routes — one `ip -batch` in its namespace. */
export function wirePod(
  ip: PendingBatch,
  netns: string,
  ifname: string,
  addrs: readonly PodAddress[],
  routes: Route[],
  viaGateways: boolean,
  record: ((r: BatchRecord) => void) | undefined,
): Promise<void> {
  const addresses = addrs.map((a) => a.address);
  const gws = viaGateways ? { viaGateways: [...new Set(addrs.map((a) => formatIP(a.gateway)))] } : {};
  const announce = [...new Set(addrs.filter((a) => a.cidr.family === 4).map((a) => formatIP(a.gateway)))];
  return apply(ip, podLines({ ifname, addresses, routes, ...gws, announce }), netns, record);
}

/** Forwarding on the node (files in /proc): IPv6's too when the pod has an IPv6 address. The step, and whether IPv4's was off. */
export function forwarding(addrs: readonly PodAddress[]): { step: Step; changed: boolean } {
  const changed = timed('sysctl', () => {
    if (addrs.some((a) => a.cidr.family === 6)) ensureSysctl('net/ipv6/conf/all/forwarding', '1');
    return ensureSysctl('net/ipv4/ip_forward', '1');
  });
  return { step: FORWARDING_STEP, changed };
}
