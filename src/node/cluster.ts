// The cluster file: the cluster network (IPv4, IPv6, or both), the backend and the node list, as
// `podwire node up` and `podwire peers sync` read it. Parsing is pure and checks everything a later step
// would trip over, so a bad file changes nothing on the node.
//
//   {
//     "clusterCIDR": "10.244.0.0/16",         // or "clusterCIDRs": ["10.244.0.0/16", "fd00:10:244::/56"]
//     "backend": "vxlan",                     // "vxlan" | "host-gw" | "auto"
//     "vxlan": { "vni": 1, "port": 8472, "device": "podwire.1", "device6": "podwire-v6.1" },  // all optional
//     "mtu": 1450,                            // optional pod MTU; default: what every family's path carries
//     "bridge": "cni0",                       // optional
//     "nodes": [ { "name": "node1", "nodeIP": "192.168.50.11", "podCIDR": "10.244.1.0/24" }, ... ]
//   }
// A dual-stack node lists both: "nodeIPs": ["192.168.50.11", "fd00:50::11"], "podCIDRs": [...]. Every node
// has exactly the cluster's families, as Kubernetes gives every Node one podCIDR per cluster CIDR.
//
// Parsed, the cluster is one Net per family (IPv4 first): the nodes' addresses of that family and the
// VXLAN device that carries it, as flannel runs one device per family. Node setup and peer sync work on
// one Net at a time with the same code, so each family costs what one family costs.
import { validIfname } from '../kernel/names.js';
import { type Cidr, type Family, type IP, cidrContains, formatCidr, formatIP, parseCidr, parseIP } from '../net/ip.js';
import { macFromIPv4, validMac } from '../net/mac.js';

export type { Family } from '../net/ip.js';
export type Backend = 'vxlan' | 'host-gw' | 'auto';
export const BACKENDS: readonly Backend[] = ['vxlan', 'host-gw', 'auto'];
export const DEFAULT_VNI = 1;
/** The Linux kernel's historical VXLAN port, which flannel uses too (IANA's is 4789). */
export const DEFAULT_VXLAN_PORT = 8472;
/** What VXLAN adds to a packet: outer IP (20 or 40) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers. */
export const VXLAN_OVERHEAD: Record<Family, number> = { 4: 50, 6: 70 };

/** A node in one address family. */
export interface NodeEntry {
  name: string;
  nodeIP: string;
  podCIDR: string;
  /** The node's VTEP in this family: its VXLAN device's MAC and the address peers route through. */
  vtepMac: string;
  /** IPv4: the podCIDR's network address, put on the device (as flannel). IPv6: the link-local address the kernel derives from the MAC. */
  vtepIP: string;
}

/** The cluster in one address family. */
export interface Net {
  family: Family;
  clusterCIDR: string;
  /** The VXLAN device carrying this family. */
  device: string;
  nodes: NodeEntry[];
}

export interface Cluster {
  backend: Backend;
  vni: number;
  port: number;
  bridge: string;
  mtu?: number;
  /** One per family, IPv4 first. */
  nets: Net[];
}

export class ClusterError extends Error {}

const bad = (field: string, why: string): ClusterError => new ClusterError(`cluster file: ${field} ${why}`);
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const FAMILY_NAME: Record<Family, string> = { 4: 'IPv4', 6: 'IPv6' };
export const familyName = (f: Family): string => FAMILY_NAME[f];

/**
 * A node's VTEP MAC, derived from its Node IP of that family: 0e:70 ("p") then an IPv4 address's 4 bytes,
 * 0e:76 ("v") then an IPv6 address's last 4. 0x0e has the locally administered bit set and the multicast
 * bit clear. Deriving it means peers never wait for it to be published, and it stays the same across
 * restarts of the node, so peers' FDB entries stay valid.
 */
export const vtepMac = (nodeIP: IP): string =>
  nodeIP.family === 4 ? macFromIPv4([0x0e, 0x70], nodeIP.value) : macFromIPv4([0x0e, 0x76], nodeIP.value & 0xffffffffn);

/** The IPv6 link-local address the kernel gives a device with this MAC (EUI-64): a VTEP that needs no address of its own. */
export function linkLocal(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  const words = [(b[0]! ^ 2) * 256 + b[1]!, b[2]! * 256 + 0xff, 0xfe00 + b[3]!, b[4]! * 256 + b[5]!];
  return formatIP({ family: 6, value: words.reduce((v, w) => (v << 16n) | BigInt(w), 0xfe80n << 48n) });
}

/** The VXLAN device of a family unless the cluster file names one (as flannel's "flannel.1", "flannel-v6.1"). */
export const vxlanDevice = (vni: number, family: Family = 4): string => (family === 4 ? `podwire.${vni}` : `podwire-v6.${vni}`);

function int(v: unknown, field: string, min: number, max: number, dflt?: number): number | undefined {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw bad(field, `must be an integer from ${min} to ${max}`);
  return v as number;
}

function cidr(v: unknown, field: string): Cidr {
  const c = typeof v === 'string' ? parseCidr(v, true) : undefined;
  if (!c) throw bad(field, `"${String(v)}" is not a subnet in CIDR notation (host bits zero)`);
  return c;
}

/** `key` (one value) or `key`+"s" (a list of one per family), as a list; the field to name in messages. */
function oneOrTwo(o: Record<string, unknown>, key: string, at: string): { values: unknown[]; field: string } {
  const plural = `${key}s`;
  if (o[plural] !== undefined) {
    if (o[key] !== undefined) throw bad(`${at}${key}`, `and ${plural} both given: give one`);
    if (!Array.isArray(o[plural]) || !o[plural].length || o[plural].length > 2)
      throw bad(`${at}${plural}`, 'must list one or two (one per family)');
    return { values: o[plural] as unknown[], field: `${at}${plural}` };
  }
  return { values: [o[key]], field: `${at}${key}` };
}

/** The values of a one-or-two field, by family, checked to be exactly the families wanted. */
function byFamily<T extends { family: Family }>(items: T[], field: string, want: readonly Family[], what: string): Map<Family, T> {
  const m = new Map<Family, T>();
  for (const x of items) {
    if (m.has(x.family)) throw bad(field, `has two ${familyName(x.family)} ${what}s`);
    m.set(x.family, x);
  }
  for (const f of want) if (!m.has(f)) throw bad(field, `has no ${familyName(f)} ${what}, but the cluster is ${clusterKind(want)}`);
  for (const f of m.keys())
    if (!want.includes(f)) throw bad(field, `has an ${familyName(f)} ${what}, but the cluster is ${clusterKind(want)}`);
  return m;
}

const clusterKind = (fs: readonly Family[]): string => (fs.length === 2 ? 'dual-stack' : `${familyName(fs[0]!)} only`);

export function parseCluster(json: unknown): Cluster {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('', 'must be a JSON object');
  const o = json as Record<string, unknown>;
  const cc = oneOrTwo(o, 'clusterCIDR', '');
  const clusters = cc.values.map((v) => cidr(v, cc.field));
  if (clusters.length === 2 && clusters[0]!.family === clusters[1]!.family) throw bad(cc.field, 'must be one IPv4 and one IPv6 network');
  clusters.sort((a, b) => a.family - b.family);
  const families = clusters.map((c) => c.family);
  const backend = o.backend ?? 'vxlan';
  if (!BACKENDS.includes(backend as Backend)) throw bad('backend', `must be one of ${BACKENDS.join(', ')}`);
  const vx = (o.vxlan ?? {}) as Record<string, unknown>;
  if (typeof vx !== 'object' || Array.isArray(vx)) throw bad('vxlan', 'must be an object');
  const vni = int(vx.vni, 'vxlan.vni', 1, 0xffffff, DEFAULT_VNI)!;
  const port = int(vx.port, 'vxlan.port', 1, 65535, DEFAULT_VXLAN_PORT)!;
  const devices: Record<Family, unknown> = { 4: vx.device ?? vxlanDevice(vni, 4), 6: vx.device6 ?? vxlanDevice(vni, 6) };
  for (const f of families) {
    const key = f === 4 ? 'vxlan.device' : 'vxlan.device6';
    if (!validIfname(devices[f])) throw bad(key, `"${String(devices[f])}" is not a valid interface name (at most 15 characters)`);
  }
  if (families.length === 2 && devices[4] === devices[6]) throw bad('vxlan.device6', 'must differ from vxlan.device');
  const bridge = o.bridge ?? 'cni0';
  if (!validIfname(bridge)) throw bad('bridge', `"${String(bridge)}" is not a valid interface name`);
  const mtu = int(o.mtu, 'mtu', families.includes(6) ? 1280 : 576, 65535); // IPv6 needs 1280
  if (!Array.isArray(o.nodes)) throw bad('nodes', 'must be a list');

  const nets: Net[] = clusters.map((c) => ({
    family: c.family,
    clusterCIDR: formatCidr(c),
    device: devices[c.family] as string,
    nodes: [],
  }));
  const seen = { name: new Set<string>(), ip: new Set<string>() };
  const slices: { slice: Cidr; i: number }[] = [];
  o.nodes.forEach((n: unknown, i) => {
    const at = `nodes[${i}].`;
    if (typeof n !== 'object' || n === null) throw bad(`nodes[${i}]`, 'must be an object');
    const e = n as Record<string, unknown>;
    if (typeof e.name !== 'string' || !NODE_NAME.test(e.name)) throw bad(`${at}name`, 'must be a DNS name (lower case)');
    if (seen.name.has(e.name)) throw bad(`${at}name`, `"${e.name}" appears twice`);
    seen.name.add(e.name);
    const ipsIn = oneOrTwo(e, 'nodeIP', at);
    const ips = byFamily(
      ipsIn.values.map((v) => {
        const ip = typeof v === 'string' ? parseIP(v) : undefined;
        if (!ip) throw bad(ipsIn.field, `"${String(v)}" is not an IP address`);
        return ip;
      }),
      ipsIn.field,
      families,
      'address',
    );
    const cidrsIn = oneOrTwo(e, 'podCIDR', at);
    const pods = byFamily(
      cidrsIn.values.map((v) => cidr(v, cidrsIn.field)),
      cidrsIn.field,
      families,
      'podCIDR',
    );
    for (const [k, net] of nets.entries()) {
      const f = net.family;
      const ip = ips.get(f)!;
      const slice = pods.get(f)!;
      const ipText = formatIP(ip);
      if (seen.ip.has(ipText)) throw bad(ipsIn.field, `${ipText} appears twice`);
      seen.ip.add(ipText);
      const cluster = clusters[k]!;
      if (!(cidrContains(cluster, { family: f, value: slice.first }) && cidrContains(cluster, { family: f, value: slice.last }))) {
        throw bad(cidrsIn.field, `${formatCidr(slice)} is not inside clusterCIDR ${formatCidr(cluster)}`);
      }
      if (slice.prefix > (f === 4 ? 30 : 126)) throw bad(cidrsIn.field, `${formatCidr(slice)} must leave room for a gateway and pods`);
      const macKey = f === 4 ? 'vtepMac' : 'vtepMac6';
      if (e[macKey] !== undefined && !validMac(e[macKey]))
        throw bad(`${at}${macKey}`, `"${String(e[macKey])}" is not a unicast MAC address`);
      const mac = ((e[macKey] as string | undefined) ?? vtepMac(ip)).toLowerCase();
      slices.push({ slice, i });
      net.nodes.push({
        name: e.name,
        nodeIP: ipText,
        podCIDR: formatCidr(slice),
        vtepMac: mac,
        vtepIP: f === 4 ? formatIP({ family: 4, value: slice.first }) : linkLocal(mac),
      });
    }
  });
  // Overlapping slices, by sorting (a list can hold thousands of nodes): only neighbours can overlap.
  const key = (s: Cidr) => BigInt(s.family) * (1n << 130n) + s.first;
  slices.sort((a, b) => (key(a.slice) < key(b.slice) ? -1 : key(a.slice) > key(b.slice) ? 1 : a.i - b.i));
  for (let k = 1; k < slices.length; k++) {
    const [prev, cur] = [slices[k - 1]!, slices[k]!];
    if (cur.slice.family === prev.slice.family && cur.slice.first <= prev.slice.last) {
      const [early, late] = prev.i < cur.i ? [prev, cur] : [cur, prev];
      throw bad(`nodes[${late.i}].podCIDR`, `${formatCidr(late.slice)} overlaps ${formatCidr(early.slice)}`);
    }
  }
  return { backend: backend as Backend, vni, port, bridge: bridge as string, ...(mtu === undefined ? {} : { mtu }), nets };
}

/** This node's entry in one family; a clear error when the name is not in the list. */
export function nodeIn(net: Net, name: string): NodeEntry {
  const n = net.nodes.find((x) => x.name === name);
  if (!n) throw new ClusterError(`node "${name}" is not in the cluster file (nodes: ${net.nodes.map((x) => x.name).join(', ') || 'none'})`);
  return n;
}

/** This node, one entry per family (in the order of c.nets). */
export const selfNode = (c: Cluster, name: string): NodeEntry[] => c.nets.map((net) => nodeIn(net, name));

/** The bridge's gateway in a family: the first address of the node's slice, with the slice's prefix. */
export function gatewayCidr(n: NodeEntry): string {
  const s = parseCidr(n.podCIDR)!;
  return formatCidr(s, s.first + 1n);
}

export const usesVxlan = (c: Cluster): boolean => c.backend !== 'host-gw';
export const families = (c: Cluster): Family[] => c.nets.map((n) => n.family);
/** e.g. "10.244.1.0/24 + fd00:10:244:1::/64": a node's slices, for people. */
export const joinPodCIDRs = (entries: readonly NodeEntry[]): string => entries.map((e) => e.podCIDR).join(' + ');
