// The cluster file: the cluster network (IPv4, IPv6, or both), the backend and the node list, as
// `podwire node up` and `podwire peers sync` read it. Parsing is pure and checks everything a later step
// would trip over, so a bad file changes nothing on the node.
//
//   {
//     "clusterCIDR": "10.244.0.0/16",         // or "clusterCIDRs": ["10.244.0.0/16", "fd00:10:244::/56"]
//     "backend": "vxlan",                     // "vxlan" | "host-gw" | "auto"
//     "vxlan": { "vni": 1, "port": 8472, "device": "podwire.1", "device6": "podwire-v6.1",  // all optional
//                "checksumOffload": "auto" },  // TX checksum offload: auto (by the kernel), on, off
//     "mtu": 1450,                            // optional pod MTU; default: what every family's path carries
//     "bridge": "cni0",                       // optional
//     "firewall": "auto",                     // optional: auto | nftables | iptables (firewall/choose.ts)
//     "nodes": [ { "name": "node1", "nodeIP": "192.168.50.11", "podCIDR": "10.244.1.0/24" }, ... ]
//   }
// A dual-stack node lists both: "nodeIPs": ["192.168.50.11", "fd00:50::11"], "podCIDRs": [...]. Every node
// has exactly the cluster's families, as Kubernetes gives every Node one podCIDR per cluster CIDR.
//
// Parsed, the cluster is one Net per family (IPv4 first): the nodes' addresses of that family and the
// VXLAN device that carries it, as flannel runs one device per family. Node setup and peer sync work on
// one Net at a time with the same code, so each family costs what one family costs.
import type { LeftOut, LeftOutReason } from '../nodestate/reports.js';
export type { LeftOut, LeftOutReason } from '../nodestate/reports.js';
export { LEFT_OUT_REASONS } from '../nodestate/reports.js';
import { FIREWALL_SETTINGS, type FirewallSetting, isFirewallSetting } from '../firewall/choose.js';
import { validIfname } from '../kernel/names.js';
import { type Cidr, type Family, type IP, cidrContains, formatCidr, formatIP, parseCidr, parseIP } from '../net/ip.js';
import { macFromIPv4, validMac } from '../net/mac.js';
import { OFFLOAD_SETTINGS, type OffloadSetting } from '../kernel/ethtool.js';

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
  /** Where the podCIDR was given, for messages ("nodes[1].podCIDR" of the cluster file, a Node's "spec.podCIDRs[0]"). */
  podCIDRField?: string;
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
  /** TX checksum offload on the VXLAN devices: `auto` (default) decides by the kernel (kernel/ethtool.ts). */
  checksumOffload: OffloadSetting;
  /** Where the node's and pods' rules go: `auto` (default) decides on the node (firewall/choose.ts). */
  firewall: FirewallSetting;
  bridge: string;
  mtu?: number;
  /** One per family, IPv4 first. */
  nets: Net[];
  /** Nodes the source gave that could not be used, and why (the API server's; a cluster file is refused whole instead). */
  leftOut?: LeftOut[];
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

/** A cluster without its nodes yet, with its networks parsed (one per family, IPv4 first). */
export interface Base {
  cluster: Cluster;
  clusters: Cidr[];
}

/** The settings that are not per node (the cluster file's, or the agent's flags). */
export function parseBase(o: Record<string, unknown>): Base {
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
  const checksumOffload = vx.checksumOffload ?? 'auto';
  if (!OFFLOAD_SETTINGS.includes(checksumOffload as OffloadSetting))
    throw bad('vxlan.checksumOffload', `must be one of ${OFFLOAD_SETTINGS.join(', ')}`);
  const devices: Record<Family, unknown> = { 4: vx.device ?? vxlanDevice(vni, 4), 6: vx.device6 ?? vxlanDevice(vni, 6) };
  for (const f of families) {
    const key = f === 4 ? 'vxlan.device' : 'vxlan.device6';
    if (!validIfname(devices[f])) throw bad(key, `"${String(devices[f])}" is not a valid interface name (at most 15 characters)`);
  }
  if (families.length === 2 && devices[4] === devices[6]) throw bad('vxlan.device6', 'must differ from vxlan.device');
  const firewall = o.firewall ?? 'auto';
  if (!isFirewallSetting(firewall)) throw bad('firewall', `must be one of ${FIREWALL_SETTINGS.join(', ')}`);
  const bridge = o.bridge ?? 'cni0';
  if (!validIfname(bridge)) throw bad('bridge', `"${String(bridge)}" is not a valid interface name`);
  const mtu = int(o.mtu, 'mtu', families.includes(6) ? 1280 : 576, 65535); // IPv6 needs 1280
  const nets: Net[] = clusters.map((c) => ({
    family: c.family,
    clusterCIDR: formatCidr(c),
    device: devices[c.family] as string,
    nodes: [],
  }));
  const cluster = {
    backend: backend as Backend,
    vni,
    port,
    checksumOffload: checksumOffload as OffloadSetting,
    firewall,
    bridge: bridge as string,
    ...(mtu === undefined ? {} : { mtu }),
    nets,
  };
  return { cluster, clusters };
}

// One set of rules for what of a node may reach the kernel, whichever source it came from: a cluster file
// (refused whole, naming the entry: it is typed by hand) or the API server's Node objects (each judged on
// its own: a bad one is left out and every other node synced as usual).

/** One value a source gives for a node, and the field it came from ("nodes[1].podCIDR", "spec.podCIDRs[0]"). */
export interface Given {
  value: unknown;
  field: string;
}

/** What a source says of one node: per family of the cluster, its address, its slice and, optionally, its VTEP MAC. */
export interface NodeClaim {
  name: Given;
  nodeIP: Partial<Record<Family, Given>>;
  podCIDR: Partial<Record<Family, Given>>;
  vtepMac: Partial<Record<Family, Given>>;
}

/** How a left-out Node is told to an operator: the object, the field and why. */
export const leftOutMessage = (l: LeftOut): string => `node ${NODE_NAME.test(l.name) ? l.name : shown(l.name)}: ${l.field} ${l.why}`;

/** Why an address cannot be a node's (unicast, routable); undefined when it can. */
export function nodeIPProblem(ip: IP): string | undefined {
  const v = ip.value;
  if (ip.family === 4) {
    const a = Number(v >> 24n);
    if (a === 0) return 'is unspecified (0.0.0.0/8)';
    if (a === 127) return 'is a loopback address';
    if (v >> 16n === 0xa9fen) return 'is link-local (169.254.0.0/16)';
    if (a >= 224 && a < 240) return 'is a multicast address';
    if (a >= 240) return 'is reserved or broadcast (240.0.0.0/4)';
    return undefined;
  }
  if (v === 0n) return 'is unspecified (::)';
  if (v === 1n) return 'is the loopback address';
  if (v >> 120n === 0xffn) return 'is a multicast address';
  if (v >> 118n === 0x3fan) return 'is link-local (fe80::/10)';
  if (v >> 32n === 0xffffn) return 'is an IPv4-mapped address';
  return undefined;
}

/**
 * A value someone else wrote (a Node's annotation, a file's entry), quoted for a message: JSON's quoting,
 * so a newline or a quote in it cannot forge another line of the agent's output. At most 100 characters.
 */
const shown = (v: unknown): string => {
  const q = JSON.stringify(v) ?? String(v);
  return q.length > 100 ? `${q.slice(0, 97)}...` : q;
};

class Refused extends Error {
  constructor(readonly left: Omit<LeftOut, 'name'>) {
    super(`${left.field} ${left.why}`);
  }
}
const refuse = (field: string, why: string, reason: LeftOutReason): Refused => new Refused({ field, why, reason });

/** One node's entries, one per net, from what its source says; throws Refused naming the field. */
function judge(claim: NodeClaim, base: Base): NodeEntry[] {
  const name = claim.name.value;
  if (typeof name !== 'string' || !NODE_NAME.test(name))
    throw refuse(claim.name.field, `${shown(name)} must be a DNS name (lower case)`, 'name');
  return base.cluster.nets.map((net, k) => {
    const f = net.family;
    const ipG = claim.nodeIP[f]!;
    const ip = typeof ipG.value === 'string' ? parseIP(ipG.value) : undefined;
    if (!ip || ip.family !== f) throw refuse(ipG.field, `${shown(ipG.value)} is not an ${familyName(f)} address`, 'node-ip');
    const problem = nodeIPProblem(ip);
    if (problem) throw refuse(ipG.field, `${formatIP(ip)} ${problem}: no node is reached there`, 'node-ip');
    const cG = claim.podCIDR[f]!;
    const slice = typeof cG.value === 'string' ? parseCidr(cG.value, true) : undefined;
    if (!slice || slice.family !== f)
      throw refuse(cG.field, `${shown(cG.value)} is not an ${familyName(f)} subnet in CIDR notation (host bits zero)`, 'pod-cidr');
    const cluster = base.clusters[k]!;
    if (!(cidrContains(cluster, { family: f, value: slice.first }) && cidrContains(cluster, { family: f, value: slice.last }))) {
      throw refuse(cG.field, `${formatCidr(slice)} is outside the cluster network ${formatCidr(cluster)}`, 'pod-cidr');
    }
    if (slice.prefix > (f === 4 ? 30 : 126))
      throw refuse(cG.field, `${formatCidr(slice)} must leave room for a gateway and pods`, 'pod-cidr');
    const macG = claim.vtepMac[f];
    if (macG && !validMac(macG.value)) throw refuse(macG.field, `${shown(macG.value)} is not a unicast MAC address`, 'vtep-mac');
    const mac = ((macG?.value as string | undefined) ?? vtepMac(ip)).toLowerCase();
    return {
      name,
      nodeIP: formatIP(ip),
      podCIDR: formatCidr(slice),
      vtepMac: mac,
      vtepIP: f === 4 ? formatIP({ family: 4, value: slice.first }) : linkLocal(mac),
      podCIDRField: cG.field,
    };
  });
}

interface Held {
  first: bigint;
  last: bigint;
  cidr: string;
  name: string;
}

/**
 * What the nodes admitted so far hold: addresses, VTEP MACs, and slices (kept sorted: they never overlap,
 * so one binary search finds the only one that can overlap a new slice; thousands of nodes stay cheap).
 */
class Holdings {
  private readonly ips = new Map<string, string>();
  private readonly macs = new Map<string, string>();
  private readonly slices: Record<Family, Held[]> = { 4: [], 6: [] };

  /** The first thing of `entries` another node holds, as a refusal; undefined when none. */
  clash(claim: NodeClaim, entries: readonly NodeEntry[], families: readonly Family[]): Refused | undefined {
    for (const [k, e] of entries.entries()) {
      const f = families[k]!;
      const ipHolder = this.ips.get(e.nodeIP);
      if (ipHolder) return refuse(claim.nodeIP[f]!.field, `${e.nodeIP} is node ${ipHolder}'s address`, 'conflict');
      const macHolder = this.macs.get(`${f} ${e.vtepMac}`);
      if (macHolder)
        return refuse(
          (claim.vtepMac[f] ?? claim.nodeIP[f])!.field,
          `gives the VTEP MAC ${e.vtepMac}, which is node ${macHolder}'s`,
          'conflict',
        );
      const s = parseCidr(e.podCIDR)!;
      const held = this.slices[f];
      const i = this.below(held, s.last);
      if (i >= 0 && held[i]!.last >= s.first)
        return refuse(e.podCIDRField ?? 'podCIDR', `${e.podCIDR} overlaps ${held[i]!.cidr} (node ${held[i]!.name}'s)`, 'conflict');
    }
    return undefined;
  }

  take(entries: readonly NodeEntry[], families: readonly Family[]): void {
    for (const [k, e] of entries.entries()) {
      const f = families[k]!;
      this.ips.set(e.nodeIP, e.name);
      this.macs.set(`${f} ${e.vtepMac}`, e.name);
      const s = parseCidr(e.podCIDR)!;
      const held = this.slices[f];
      held.splice(this.below(held, s.last) + 1, 0, { first: s.first, last: s.last, cidr: e.podCIDR, name: e.name });
    }
  }

  /** The index of the last slice that starts at or before `x`; -1 when none. */
  private below(held: readonly Held[], x: bigint): number {
    let [lo, hi] = [0, held.length - 1];
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (held[mid]!.first <= x) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi;
  }
}

/**
 * The nodes of `claims`, in order of precedence (the first to claim an address, a slice or a MAC keeps
 * it): each judged on its own and against those admitted before it. Returns the cluster with the nodes
 * admitted, and the others with the reason; `strict` throws at the first instead (a cluster file).
 */
export function admitNodes(
  base: Base,
  claims: readonly NodeClaim[],
  strict?: (field: string, why: string) => Error,
): { cluster: Cluster; leftOut: LeftOut[] } {
  const cluster: Cluster = { ...base.cluster, nets: base.cluster.nets.map((n) => ({ ...n, nodes: [] })) };
  const fams = cluster.nets.map((n) => n.family);
  const held = new Holdings();
  const names = new Set<string>();
  const leftOut: LeftOut[] = [];
  for (const claim of claims) {
    try {
      const entries = judge(claim, base);
      if (names.has(entries[0]!.name)) throw refuse(claim.name.field, `"${entries[0]!.name}" appears twice`, 'name');
      const clash = held.clash(claim, entries, fams);
      if (clash) throw clash;
      held.take(entries, fams);
      names.add(entries[0]!.name);
      entries.forEach((e, k) => cluster.nets[k]!.nodes.push(e));
    } catch (e) {
      if (!(e instanceof Refused)) throw e;
      if (strict) throw strict(e.left.field, e.left.why);
      leftOut.push({ name: String(claim.name.value), ...e.left });
    }
  }
  return { cluster, leftOut };
}

export function parseCluster(json: unknown): Cluster {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('', 'must be a JSON object');
  const o = json as Record<string, unknown>;
  const base = parseBase(o);
  const families = base.clusters.map((c) => c.family);
  if (!Array.isArray(o.nodes)) throw bad('nodes', 'must be a list');
  // The file's own shape first (one or two values, exactly the cluster's families), then the rules every source shares.
  const claims = o.nodes.map((n: unknown, i): NodeClaim => {
    const at = `nodes[${i}].`;
    if (typeof n !== 'object' || n === null) throw bad(`nodes[${i}]`, 'must be an object');
    const e = n as Record<string, unknown>;
    const ipsIn = oneOrTwo(e, 'nodeIP', at);
    const ips = byFamily(
      ipsIn.values.map((v) => {
        const ip = typeof v === 'string' ? parseIP(v) : undefined;
        if (!ip) throw bad(ipsIn.field, `"${String(v)}" is not an IP address`);
        return { family: ip.family, value: v };
      }),
      ipsIn.field,
      families,
      'address',
    );
    const cidrsIn = oneOrTwo(e, 'podCIDR', at);
    const pods = byFamily(
      cidrsIn.values.map((v) => ({ family: cidr(v, cidrsIn.field).family, value: v })),
      cidrsIn.field,
      families,
      'podCIDR',
    );
    const claim: NodeClaim = { name: { value: e.name, field: `${at}name` }, nodeIP: {}, podCIDR: {}, vtepMac: {} };
    for (const f of families) {
      claim.nodeIP[f] = { value: ips.get(f)!.value, field: ipsIn.field };
      claim.podCIDR[f] = { value: pods.get(f)!.value, field: cidrsIn.field };
      const macKey = f === 4 ? 'vtepMac' : 'vtepMac6';
      if (e[macKey] !== undefined) claim.vtepMac[f] = { value: e[macKey], field: `${at}${macKey}` };
    }
    return claim;
  });
  const { cluster } = admitNodes(base, claims, bad);
  for (const net of cluster.nets) for (const n of net.nodes) n.podCIDRField = `cluster file ${n.podCIDRField}`;
  return cluster;
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
