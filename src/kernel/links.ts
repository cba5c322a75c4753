// The link-level steps of wiring a pod, as `ip -batch` lines, each with what it does and why. Builders
// are pure so they can be tested and shown (the trace, src/cni/trace.ts); ipBatch() applies them.
import type { IpStep } from './step.js';
import { sys } from '../files.js';
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
  `addr ${verb} ${cidr} dev ${dev}${cidr.includes(':') ? ' nodad' : ''}`;

const gatewayStep = (cidr: string, bridge: string): IpStep => ({
  what: `give ${bridge} the gateway address ${cidr}`,
  cmd: addrLine('replace', cidr, bridge),
  why:
    "the bridge is every pod's default gateway: what a pod sends off its own subnet (other nodes' pods, Cluster IPs, the world) " +
    "enters the node's routing table here; `replace` is a no-op when it is there",
});

/** Create (when missing) and configure the bridge. `addr replace` and `up` are idempotent. */
export function bridgeLines(b: BridgeSpec, exists: boolean): IpStep[] {
  return [
    ...(exists
      ? []
      : [
          {
            what: `create the bridge ${b.name}, the node's virtual switch for its pods`,
            cmd: `link add name ${b.name} address ${b.mac} mtu ${b.mtu} type bridge`,
            why:
              `every pod's host end plugs into it, so pods on this node reach each other at layer 2; its MAC is derived from the ` +
              `gateway address, so it stays the same as pods come and go`,
          },
        ]),
    ...b.gatewayCidrs.map((g) => gatewayStep(g, b.name)),
    { what: `bring ${b.name} up`, cmd: `link set dev ${b.name} up`, why: 'a bridge that is down forwards nothing (a no-op when it is up)' },
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
  return [
    {
      what:
        `create the veth pair ${v.host} <-> ${v.peer}: the ${v.peer} end is made directly inside the pause container's network ` +
        `namespace, already named ${v.peer}`,
      cmd:
        `link add name ${v.host} address ${v.hostMac} mtu ${v.mtu} type veth peer name ${v.peer} address ${v.peerMac} mtu ${v.mtu} ` +
        `netns ${v.netns}`,
      why:
        `a veth pair is a virtual cable: what enters one end leaves the other. One netlink call does what "create the pair, move the ` +
        `peer into the pod's namespace, rename it to ${v.peer}" does in three`,
    },
    {
      what: `attach the host end ${v.host} to ${v.bridge} and bring it up`,
      cmd: `link set dev ${v.host} master ${v.bridge} up`,
      why:
        `the host end becomes a port of the bridge: the pod is now plugged into the node's switch (the pod's MAC is learned on this ` +
        `port)`,
    },
    ...(v.hairpin
      ? [
          {
            what: `turn hairpin on for ${v.host}`,
            cmd: `link set dev ${v.host} type bridge_slave hairpin on`,
            why:
              'a bridge never sends a frame back out of the port it came in by; hairpin allows it, so a pod can reach itself through ' +
              'a Service when kube-proxy picks it as the backend',
          },
        ]
      : []),
  ];
}

export interface PodSpec {
  ifname: string;
  /** CIDR addresses, e.g. ["10.244.1.5/24"]. */
  addresses: string[];
  routes: { dst: string; gw?: string }[];
}

const isDefault = (dst: string): boolean => dst === '0.0.0.0/0' || dst === '::/0';

/** Inside the pod: loopback up, address, link up, routes (default route included by the caller). */
export function podLines(p: PodSpec): IpStep[] {
  return [
    {
      what: 'bring up loopback inside the pod',
      cmd: 'link set dev lo up',
      why: 'the containers of a pod share this namespace and talk to each other over 127.0.0.1',
    },
    ...p.addresses.map((a) => ({
      what: `give ${p.ifname} the Pod IP ${a}`,
      cmd: addrLine('add', a, p.ifname),
      why:
        `the Pod IP is how every other pod, node and Service backend reaches this pod; the /${a.split('/')[1]} says which addresses ` +
        `are on the pod's own link (this node's pods, reached through the bridge)` +
        (a.includes(':')
          ? '. nodad: no duplicate address detection, which would keep the address unusable ("tentative") for a second or two ' +
            "while the pod starts; the IPAM made it this pod's alone already"
          : ''),
    })),
    {
      what: `bring ${p.ifname} up`,
      cmd: `link set dev ${p.ifname} up`,
      why: 'an interface that is down sends nothing, and the kernel adds the subnet route for its address only once it is up',
    },
    ...p.routes.map((r) => ({
      what: isDefault(r.dst) ? `add the default route via ${r.gw} (the bridge)` : `add the route to ${r.dst}${r.gw ? ` via ${r.gw}` : ''}`,
      cmd: `route replace ${r.dst}${r.gw ? ` via ${r.gw}` : ''} dev ${p.ifname}`,
      why: isDefault(r.dst)
        ? "everything off the pod's subnet (pods on other nodes, Cluster IPs, the outside world) goes to the node, whose routing table " +
          'decides where it goes next'
        : 'a route from the IPAM config (ipam.routes)',
    })),
  ];
}

/**
 * Deletes links of this namespace with one `ip -force -batch`, without reading first: a link that is gone
 * already answers "Cannot find device", which is no error here (a veth vanishes with its pod's namespace,
 * which the kernel tears down asynchronously, so a read before the delete proves nothing anyway).
 * Returns the names that were missing.
 */
export async function deleteLinks(names: readonly string[]): Promise<string[]> {
  const lines = names.map((n) => `link del dev ${n}`);
  const failures = await forceBatch('ip', lines);
  const failed = failures.find((f) => !NO_SUCH_DEVICE.test(f.error));
  if (failed) throw new IpBatchError(lines.indexOf(failed.command) + 1, failed.command, failed.error);
  return failures.map((f) => f.command.slice('link del dev '.length));
}
