// The link-level steps of wiring a pod, as `ip -batch` lines. Builders are pure so they can be tested
// and shown (trace); ipBatch() applies them.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * The host end's name is derived from (network, container, ifname): "veth" + 8 hex chars. DEL can then
 * remove it without entering the pod's namespace (which may be gone), and CHECK knows what to look for.
 */
export function hostVethName(network: string, containerID: string, ifname: string): string {
  return 'veth' + createHash('sha256').update(`${network}\0${containerID}\0${ifname}`).digest('hex').slice(0, 8);
}

export const HOST_VETH_RE = /^veth[0-9a-f]{8}$/;

const hex = (bytes: Iterable<number>): string => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');

/** A random locally administered unicast MAC. We choose MACs ourselves so no read-back is needed. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return hex(b);
}

/**
 * The bridge's MAC, derived from its gateway address (0a:58 + the last 4 bytes, as kubenet does). A
 * bridge otherwise takes the lowest MAC of its ports, which changes as pods come and go and leaves every
 * pod's ARP entry for the gateway stale.
 */
export function bridgeMac(gateway: bigint): string {
  const b = [0x0a, 0x58];
  for (let i = 3; i >= 0; i--) b.push(Number((gateway >> BigInt(i * 8)) & 0xffn));
  return hex(b);
}

/**
 * Interface names in this process's network namespace. /proc/net/dev follows the reader's namespace,
 * unlike /sys, which follows whoever mounted it.
 */
export function localLinks(): Set<string> {
  const names = new Set<string>();
  for (const line of readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i > 0) names.add(line.slice(0, i).trim());
  }
  return names;
}

export interface BridgeSpec {
  name: string;
  mtu: number;
  /** Gateway address with the subnet's prefix, e.g. "10.244.1.1/24". */
  gatewayCidr: string;
  mac: string;
}

/**
 * `addr add|replace` of an address. IPv6 addresses skip duplicate address detection: the address is ours
 * by allocation, and DAD would leave it "tentative" (unusable) for the pod's first seconds.
 */
export const addrLine = (verb: 'add' | 'replace', cidr: string, dev: string): string =>
  `addr ${verb} ${cidr} dev ${dev}${cidr.includes(':') ? ' nodad' : ''}`;

/** Create (when missing) and configure the bridge. `addr replace` and `up` are idempotent. */
export function bridgeLines(b: BridgeSpec, exists: boolean): string[] {
  return [
    ...(exists ? [] : [`link add name ${b.name} address ${b.mac} mtu ${b.mtu} type bridge`]),
    addrLine('replace', b.gatewayCidr, b.name),
    `link set dev ${b.name} up`,
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
export function vethLines(v: VethSpec): string[] {
  return [
    `link add name ${v.host} address ${v.hostMac} mtu ${v.mtu} type veth peer name ${v.peer} address ${v.peerMac} mtu ${v.mtu} netns ${v.netns}`,
    `link set dev ${v.host} master ${v.bridge} up`,
    // Hairpin lets a frame leave by the port it came in: a pod reaching itself through a Service VIP.
    ...(v.hairpin ? [`link set dev ${v.host} type bridge_slave hairpin on`] : []),
  ];
}

export interface PodSpec {
  ifname: string;
  /** CIDR addresses, e.g. ["10.244.1.5/24"]. */
  addresses: string[];
  routes: { dst: string; gw?: string }[];
}

/** Inside the pod: loopback up, address, link up, routes (default route included by the caller). */
export function podLines(p: PodSpec): string[] {
  return [
    'link set dev lo up',
    ...p.addresses.map((a) => addrLine('add', a, p.ifname)),
    `link set dev ${p.ifname} up`,
    ...p.routes.map((r) => `route replace ${r.dst}${r.gw ? ` via ${r.gw}` : ''} dev ${p.ifname}`),
  ];
}
