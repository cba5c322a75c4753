// The cluster file: the cluster network, the backend and the node list, as `podwire node up` and
// `podwire peers sync` read it. Parsing is pure and checks everything a later step would trip over, so a
// bad file changes nothing on the node.
//
//   {
//     "clusterCIDR": "10.244.0.0/16",
//     "backend": "vxlan",                     // "vxlan" | "host-gw" | "auto"
//     "vxlan": { "vni": 1, "port": 8472, "device": "podwire.1" },   // all optional
//     "mtu": 1450,                            // optional pod MTU; default: underlay MTU (- 50 with vxlan/auto)
//     "bridge": "cni0",                       // optional
//     "nodes": [ { "name": "node1", "nodeIP": "192.168.50.11", "podCIDR": "10.244.1.0/24" }, ... ]
//   }
//
// A node may carry "vtepMac"; by default it is derived from its Node IP (see vtepMac), so nobody has to
// distribute it.
import { validIfname } from '../kernel/names.js';
import { type Cidr, type IP, cidrContains, formatCidr, formatIP, parseCidr, parseIP } from '../net/ip.js';
import { macFromIPv4, validMac } from '../net/mac.js';

export type Backend = 'vxlan' | 'host-gw' | 'auto';
export const BACKENDS: readonly Backend[] = ['vxlan', 'host-gw', 'auto'];
export const DEFAULT_VNI = 1;
/** The Linux kernel's historical VXLAN port, which flannel uses too (IANA's is 4789). */
export const DEFAULT_VXLAN_PORT = 8472;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers. */
export const VXLAN_OVERHEAD = 50;

export interface NodeEntry {
  name: string;
  nodeIP: string;
  podCIDR: string;
  /** The node's VTEP: its VXLAN device's MAC and address (the podCIDR's network address, as flannel). */
  vtepMac: string;
  vtepIP: string;
}

export interface Cluster {
  clusterCIDR: string;
  backend: Backend;
  vni: number;
  port: number;
  device: string;
  bridge: string;
  mtu?: number;
  nodes: NodeEntry[];
}

export class ClusterError extends Error {}

const bad = (field: string, why: string): ClusterError => new ClusterError(`cluster file: ${field} ${why}`);
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * A node's VTEP MAC, derived from its (IPv4) Node IP: 0e:70 ("p") then the address's 4 bytes. 0x0e has
 * the locally administered bit set and the multicast bit clear; two nodes share a MAC only if they share
 * a Node IP. Deriving it means peers never wait for it to be published, and it stays the same across
 * restarts of the node, so peers' FDB entries stay valid.
 */
export const vtepMac = (nodeIP: IP): string => macFromIPv4([0x0e, 0x70], nodeIP.value);

/** The VXLAN device's name unless the cluster file names one (as flannel's "flannel.1"). */
export const vxlanDevice = (vni: number): string => `podwire.${vni}`;

function int(v: unknown, field: string, min: number, max: number, dflt?: number): number | undefined {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw bad(field, `must be an integer from ${min} to ${max}`);
  return v as number;
}

function v4Cidr(v: unknown, field: string): Cidr {
  const c = typeof v === 'string' ? parseCidr(v, true) : undefined;
  if (!c) throw bad(field, `"${String(v)}" is not a subnet in CIDR notation (host bits zero)`);
  if (c.family !== 4) throw bad(field, 'must be IPv4 (the node agent does not do IPv6 clusters yet)');
  return c;
}

export function parseCluster(json: unknown): Cluster {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('', 'must be a JSON object');
  const o = json as Record<string, unknown>;
  const cluster = v4Cidr(o.clusterCIDR, 'clusterCIDR');
  const backend = o.backend ?? 'vxlan';
  if (!BACKENDS.includes(backend as Backend)) throw bad('backend', `must be one of ${BACKENDS.join(', ')}`);
  const vx = (o.vxlan ?? {}) as Record<string, unknown>;
  if (typeof vx !== 'object' || Array.isArray(vx)) throw bad('vxlan', 'must be an object');
  const vni = int(vx.vni, 'vxlan.vni', 1, 0xffffff, DEFAULT_VNI)!;
  const port = int(vx.port, 'vxlan.port', 1, 65535, DEFAULT_VXLAN_PORT)!;
  const device = vx.device ?? vxlanDevice(vni);
  if (!validIfname(device)) throw bad('vxlan.device', `"${String(device)}" is not a valid interface name (at most 15 characters)`);
  const bridge = o.bridge ?? 'cni0';
  if (!validIfname(bridge)) throw bad('bridge', `"${String(bridge)}" is not a valid interface name`);
  const mtu = int(o.mtu, 'mtu', 576, 65535);
  if (!Array.isArray(o.nodes)) throw bad('nodes', 'must be a list');

  const seen = { name: new Set<string>(), ip: new Set<string>() };
  const slices: { slice: Cidr; i: number }[] = [];
  const nodes = o.nodes.map((n: unknown, i): NodeEntry => {
    const f = (k: string) => `nodes[${i}].${k}`;
    if (typeof n !== 'object' || n === null) throw bad(`nodes[${i}]`, 'must be an object');
    const e = n as Record<string, unknown>;
    if (typeof e.name !== 'string' || !NODE_NAME.test(e.name)) throw bad(f('name'), 'must be a DNS name (lower case)');
    if (seen.name.has(e.name)) throw bad(f('name'), `"${e.name}" appears twice`);
    const nodeIP = typeof e.nodeIP === 'string' ? parseIP(e.nodeIP) : undefined;
    if (!nodeIP || nodeIP.family !== 4) throw bad(f('nodeIP'), `"${String(e.nodeIP)}" is not an IPv4 address`);
    const ipText = formatIP(nodeIP);
    if (seen.ip.has(ipText)) throw bad(f('nodeIP'), `${ipText} appears twice`);
    const slice = v4Cidr(e.podCIDR, f('podCIDR'));
    if (!(cidrContains(cluster, { family: 4, value: slice.first }) && cidrContains(cluster, { family: 4, value: slice.last }))) {
      throw bad(f('podCIDR'), `${formatCidr(slice)} is not inside clusterCIDR ${formatCidr(cluster)}`);
    }
    if (slice.prefix > 30) throw bad(f('podCIDR'), 'must leave room for a gateway and pods (/30 or larger)');
    if (e.vtepMac !== undefined && !validMac(e.vtepMac)) throw bad(f('vtepMac'), `"${String(e.vtepMac)}" is not a unicast MAC address`);
    seen.name.add(e.name);
    seen.ip.add(ipText);
    slices.push({ slice, i });
    return {
      name: e.name,
      nodeIP: ipText,
      podCIDR: formatCidr(slice),
      vtepMac: ((e.vtepMac as string | undefined) ?? vtepMac(nodeIP)).toLowerCase(),
      vtepIP: formatIP({ family: 4, value: slice.first }),
    };
  });
  // Overlapping slices, by sorting (a list can hold thousands of nodes): only neighbours can overlap.
  slices.sort((a, b) => (a.slice.first < b.slice.first ? -1 : a.slice.first > b.slice.first ? 1 : a.i - b.i));
  for (let k = 1; k < slices.length; k++) {
    const [prev, cur] = [slices[k - 1]!, slices[k]!];
    if (cur.slice.first <= prev.slice.last) {
      const [early, late] = prev.i < cur.i ? [prev, cur] : [cur, prev];
      throw bad(`nodes[${late.i}].podCIDR`, `${formatCidr(late.slice)} overlaps ${formatCidr(early.slice)}`);
    }
  }
  return { clusterCIDR: formatCidr(cluster), backend: backend as Backend, vni, port, device, bridge, mtu, nodes };
}

/** This node's entry; a clear error when the name is not in the list. */
export function selfNode(c: Cluster, name: string): NodeEntry {
  const n = c.nodes.find((x) => x.name === name);
  if (!n) throw new ClusterError(`node "${name}" is not in the cluster file (nodes: ${c.nodes.map((x) => x.name).join(', ') || 'none'})`);
  return n;
}

/** The bridge's gateway: the first address of the node's slice, with the slice's prefix. */
export function gatewayCidr(n: NodeEntry): string {
  const s = parseCidr(n.podCIDR)!;
  return formatCidr(s, s.first + 1n);
}

export const usesVxlan = (c: Cluster): boolean => c.backend !== 'host-gw';
