// The link-level steps of wiring a pod, as `ip -batch` lines, each with what it does and why. Builders
// are pure so they can be tested and shown (the trace, src/cni/trace.ts); ipBatch() applies them.
import { familyOf } from '../net/ip.js';
import type { IpStep } from './step.js';
import { sys } from '../runtime/files.js';
import { macFromIPv4 } from '../net/mac.js';
import type { IP } from '../net/ip.js';
import { IpBatchError, NO_SUCH_DEVICE, forceBatch } from './run.js';

/**
 * The bridge's MAC, derived from its gateway address (0a:58 + an IPv4 address, as kubenet does; for IPv6
 * the 32 bits before the interface ID, which tell /64 slices apart). A bridge otherwise takes the lowest
 * MAC of its ports, which changes as pods come and go and leaves every pod's ARP entry for the gateway stale.
 */
export const bridgeMac = (gateway: IP): string =>
  macFromIPv4([0x0a, 0x58], gateway.family === 4 ? gateway.value : (gateway.value >> 64n) & 0xffffffffn);

/**
 * Interface names in this process's network namespace. /proc/net/dev follows the reader's namespace,
 * unlike /sys, which follows whoever mounted it; and reading it costs no process.
 */
export function localLinks(): Set<string> {
  const names = new Set<string>();
  for (const line of (sys().readText('/proc/net/dev') ?? '').split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i > 0) names.add(line.slice(0, i).trim());
  }
  return names;
}

export interface BridgeSpec {
  name: string;
  mtu: number;
  /** Gateway addresses with their subnets' prefixes, one per family, e.g. ["10.244.1.1/24"]. */
  gatewayCidrs: string[];
  mac: string;
}

/**
 * `addr add|replace` of an address. IPv6 addresses skip duplicate address detection: the address is ours
 * by allocation, and DAD would leave it "tentative" (unusable) for the pod's first seconds.
 */
export const addrLine = (verb: 'add' | 'replace', cidr: string, dev: string): string =>
  `addr ${verb} ${cidr} dev ${dev}${familyOf(cidr) === 6 ? ' nodad' : ''}`;

const gatewayStep = (cidr: string, bridge: string): IpStep => ({
  id: 'gateway',
  p: { bridge, cidr },
  cmd: addrLine('replace', cidr, bridge),
});

/** Create (when missing) and configure the bridge. `addr replace` and `up` are idempotent. */
export function bridgeLines(b: BridgeSpec, exists: boolean): IpStep[] {
  const p = { bridge: b.name };
  return [
    ...(exists ? [] : [{ id: 'bridgeCreate', p, cmd: `link add name ${b.name} address ${b.mac} mtu ${b.mtu} type bridge` } as const]),
    ...b.gatewayCidrs.map((g) => gatewayStep(g, b.name)),
    { id: 'bridgeUp', p, cmd: `link set dev ${b.name} up` },
  ];
}

export interface VethSpec {
  host: string;
  hostMac: string;
  peer: string;
  peerMac: string;
  netns: string;
  mtu: number;
  bridge: string;
  hairpin: boolean;
}

/**
 * The veth pair is created with its peer already named and placed in the pod's namespace (one netlink
 * call instead of create, move, rename); the kernel refuses it if that name exists there.
 */
export function vethLines(v: VethSpec): IpStep[] {
  const p = { host: v.host, peer: v.peer, bridge: v.bridge };
  return [
    {
      id: 'veth',
      p,
      cmd:
        `link add name ${v.host} address ${v.hostMac} mtu ${v.mtu} type veth peer name ${v.peer} address ${v.peerMac} mtu ${v.mtu} ` +
        `netns ${v.netns}`,
    },
    { id: 'attach', p, cmd: `link set dev ${v.host} master ${v.bridge} up` },
    ...(v.hairpin ? [{ id: 'hairpin', p, cmd: `link set dev ${v.host} type bridge_slave hairpin on` } as const] : []),
  ];
}

export interface PodSpec {
  ifname: string;
  /** CIDR addresses, e.g. ["10.244.1.5/24"]. */
  addresses: string[];
  routes: { dst: string; gw?: string }[];
  /**
   * Every packet through the node: the pod's subnet is not on-link (noprefixroute), only its gateways are
   * (a route each), so a packet to a neighbour on the same bridge goes to the node too.
   */
  viaGateways?: string[];
  /**
   * IPv4 gateways the pod asks for at once: its ARP request carries its address and MAC to the node and
   * to every host on the bridge that holds an entry for the address, so a reused IP is reachable before
   * the pod sends anything of its own (the reference bridge plugin's gratuitous ARP, with no process more).
   */
  announce?: string[];
}

const isDefault = (dst: string): boolean => dst === '0.0.0.0/0' || dst === '::/0';

/** Inside the pod: loopback up, address, link up, routes (default route included by the caller). */
export function podLines(p: PodSpec): IpStep[] {
  const ifname = p.ifname;
  return [
    { id: 'lo', cmd: 'link set dev lo up' },
    ...p.addresses.map((a) => ({
      id: 'podIP' as const,
      p: {
        ifname,
        address: a,
        prefix: a.split('/')[1]!,
        nodad: familyOf(a) === 6 ? { id: 'step.nodad' as const } : '',
        noprefix: p.viaGateways ? { id: 'step.noprefix' as const } : '',
      },
      cmd: addrLine('add', a, ifname) + (p.viaGateways ? ' noprefixroute' : ''),
    })),
    { id: 'podUp', p: { ifname }, cmd: `link set dev ${ifname} up` },
    ...(p.viaGateways ?? []).map((gw) => ({
      id: 'gatewayRoute' as const,
      p: { gw, ifname },
      cmd: `route replace ${gw} dev ${ifname} scope link`,
    })),
    ...p.routes.map((r) => ({
      id: isDefault(r.dst) ? ('defaultRoute' as const) : ('route' as const),
      p: { dst: r.dst, gw: r.gw ?? '', via: r.gw ? { id: 'step.via' as const, p: { gw: r.gw } } : '' },
      cmd: `route replace ${r.dst}${r.gw ? ` via ${r.gw}` : ''} dev ${ifname}`,
    })),
    ...(p.announce ?? []).map((gw) => ({ id: 'announce' as const, p: { gw, ifname }, cmd: `neigh replace ${gw} dev ${ifname} use` })),
  ];
}

/**
 * Deletes links of this namespace with one `ip -force -batch`, without reading first: a link that is gone
 * already answers "Cannot find device", which is no error here (a veth vanishes with its pod's namespace,
 * which the kernel tears down asynchronously, so a read before the delete proves nothing anyway).
 * Returns the names that were missing.
 */
export async function deleteLinks(names: readonly string[], forget: readonly { ip: string; dev: string }[] = []): Promise<string[]> {
  const lines = names.map((n) => `link del dev ${n}`);
  // The node's neighbour entries for addresses that leave with the pod: a pod given one of them next is
  // resolved afresh rather than sent to this one's MAC. A flush: an entry that is not there is no error,
  // and a permanent one (someone's own) is left alone.
  const neighs = forget.map((f) => `neigh flush to ${f.ip} dev ${f.dev}`);
  const failures = await forceBatch('ip', [...lines, ...neighs]);
  const failed = failures.find((f) => !NO_SUCH_DEVICE.test(f.error));
  if (failed) throw new IpBatchError(lines.indexOf(failed.command) + 1, failed.command, failed.error);
  return failures.filter((f) => f.command.startsWith('link del dev ')).map((f) => f.command.slice('link del dev '.length));
}
