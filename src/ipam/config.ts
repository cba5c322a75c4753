// The "ipam" section: where the node's slices come from and which part of each pods may use.
//
// The slices are given inline (ipam.subnet; or ipam.ranges, host-local's list of range sets, one per
// family for dual-stack) or read from the node subnet file (ipam.subnetFile), which `podwire node up` /
// the node agent writes. That file is JSON:
//   {"podCIDR": "10.244.1.0/24", "clusterCIDR": "10.244.0.0/16", "mtu": 1450}
// podCIDR is required; a dual-stack node's file also lists "podCIDRs" (IPv4 first); clusterCIDR and mtu
// are optional (mtu is used when the plugin config sets none). A pod gets one address from each slice.
import { CniError, Code, invalidConfig } from '../cni/errors.js';
import type { Route } from '../cni/types.js';
import { validAbsPath } from '../cni/validate.js';
import { type SubnetFile, SubnetFileError, readSubnetFile } from '../nodestate/subnet-file.js';
import { type Cidr, type IP, cidrContains, formatIP, isIPv4Mapped, parseCidr, parseIP } from '../net/ip.js';

export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';
export const IPAM_TYPE = 'podwire-ipam';

export interface Pool {
  subnet: Cidr;
  /** Inclusive bounds of the addresses handed out. */
  start: bigint;
  end: bigint;
  gateway: IP;
  /** Where the slice was given, for messages: "ipam.subnet", "ipam.ranges[0][0].subnet", "ipam.subnetFile". */
  field: string;
}

export interface IpamConfig {
  /** One per slice (per family on a dual-stack node), in the order given; a pod gets an address from each. */
  pools: Pool[];
  routes: Route[];
  dataDir: string;
  /** From the subnet file, for the plugin to use when its own config has no mtu. */
  mtu?: number;
  /** From the subnet file: every pod packet goes through the node (nodestate/subnet-file.ts). */
  podsViaNode?: boolean;
  clusterCIDR?: string;
}

/** A subnet file that cannot be used, as the CNI error a runtime acts on: one not written yet is "try again later". */
function subnetFileError(e: unknown): CniError {
  if (!(e instanceof SubnetFileError)) throw e;
  if (e.kind === 'missing') {
    // The node agent has not written it yet: the runtime should retry, not give up.
    return new CniError(Code.TryAgainLater, `node subnet file ${e.path} does not exist yet (is "podwire node up" or the agent running?)`);
  }
  if (e.kind === 'unreadable') return new CniError(Code.IO, `cannot read node subnet file ${e.path}: ${e.message}`);
  return invalidConfig('ipam.subnetFile', `${e.path} is not a valid subnet file: ${e.message}`);
}

function ipIn(pool: Cidr, key: string, value: unknown): IP {
  const ip = typeof value === 'string' ? parseIP(value) : undefined;
  if (!ip) throw invalidConfig(key, `"${String(value)}" is not an IP address`);
  if (!cidrContains(pool, ip)) throw invalidConfig(key, `${value} is not inside the subnet`);
  return ip;
}

export function parseRoutes(raw: unknown, key: string): Route[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw invalidConfig(key, 'must be a list of {dst, gw}');
  return raw.map((r: unknown, i) => {
    const { dst, gw } = (r ?? {}) as { dst?: unknown; gw?: unknown };
    if (typeof dst !== 'string' || !parseCidr(dst, true)) throw invalidConfig(`${key}[${i}].dst`, 'must be a network in CIDR notation');
    if (gw !== undefined && (typeof gw !== 'string' || !parseIP(gw))) throw invalidConfig(`${key}[${i}].gw`, 'must be an IP address');
    return gw === undefined ? { dst } : { dst, gw: gw as string };
  });
}

/** A slice and the part of it handed out: the checks host-local makes of a range. */
function parsePool(r: Record<string, unknown>, at: string, subnetText: unknown, subnetKey: string): Pool {
  const subnet = typeof subnetText === 'string' ? parseCidr(subnetText, true) : undefined;
  if (!subnet) throw invalidConfig(subnetKey, `"${String(subnetText)}" is not a network in CIDR notation (host bits must be zero)`);
  if (isIPv4Mapped(subnet)) throw invalidConfig(subnetKey, `${subnetText} is an IPv4-mapped IPv6 network: write the IPv4 network instead`);
  const hostBits = (subnet.family === 4 ? 32 : 128) - subnet.prefix;
  if (hostBits < 2) throw invalidConfig(subnetKey, `${subnetText} is too small: it needs room for a gateway and pods`);

  // IPv4 keeps its network and broadcast addresses out; IPv6 has no broadcast, only the subnet-router anycast.
  const usableFirst = subnet.first + 1n;
  const usableLast = subnet.family === 4 ? subnet.last - 1n : subnet.last;
  const gateway = r.gateway === undefined ? { family: subnet.family, value: usableFirst } : ipIn(subnet, `${at}gateway`, r.gateway);
  const start = r.rangeStart === undefined ? usableFirst : ipIn(subnet, `${at}rangeStart`, r.rangeStart).value;
  const end = r.rangeEnd === undefined ? usableLast : ipIn(subnet, `${at}rangeEnd`, r.rangeEnd).value;
  if (start < usableFirst || start > usableLast) throw invalidConfig(`${at}rangeStart`, 'is the network or broadcast address');
  if (end < usableFirst || end > usableLast) throw invalidConfig(`${at}rangeEnd`, 'is the network or broadcast address');
  if (start > end) throw invalidConfig(`${at}rangeStart`, `is after ${at}rangeEnd (${formatIP({ family: subnet.family, value: end })})`);
  return { subnet, start, end, gateway, field: subnetKey };
}

/** Reads and checks the ipam section (and the node subnet file it names). */
export function parseIpamConfig(ipam: Record<string, unknown> | undefined): IpamConfig {
  if (!ipam || typeof ipam !== 'object') throw invalidConfig('ipam', 'missing');
  const { subnet: subnetRaw, subnetFile, ranges } = ipam;
  if ([subnetRaw, subnetFile, ranges].filter((x) => x !== undefined).length !== 1) {
    throw invalidConfig('ipam.subnet', 'give exactly one of ipam.subnet, ipam.ranges or ipam.subnetFile');
  }
  let file: SubnetFile | undefined;
  let pools: Pool[];
  if (subnetFile !== undefined) {
    if (!validAbsPath(subnetFile)) throw invalidConfig('ipam.subnetFile', 'must be an absolute path');
    try {
      file = readSubnetFile(subnetFile);
    } catch (e) {
      throw subnetFileError(e);
    }
    const slices = file.podCIDRs?.length ? file.podCIDRs : [file.podCIDR];
    pools = slices.map((c) => parsePool(ipam, 'ipam.', c, 'ipam.subnetFile'));
  } else if (ranges !== undefined) {
    // host-local's shape: a list of range sets, each a list of ranges; podwire uses the first of each set.
    if (!Array.isArray(ranges) || !ranges.length || ranges.length > 2)
      throw invalidConfig('ipam.ranges', 'must list one or two range sets');
    pools = ranges.map((set: unknown, i) => {
      const r = Array.isArray(set) ? (set[0] as Record<string, unknown> | undefined) : undefined;
      if (!r || typeof r !== 'object') throw invalidConfig(`ipam.ranges[${i}]`, 'must be a list of ranges ({"subnet": ...})');
      return parsePool(r, `ipam.ranges[${i}][0].`, r.subnet, `ipam.ranges[${i}][0].subnet`);
    });
  } else pools = [parsePool(ipam, 'ipam.', subnetRaw, 'ipam.subnet')];
  if (pools.length === 2 && pools[0]!.subnet.family === pools[1]!.subnet.family) {
    throw invalidConfig(subnetFile !== undefined ? 'ipam.subnetFile' : 'ipam.ranges', 'two slices must be one IPv4 and one IPv6');
  }

  const dataDir = ipam.dataDir ?? DEFAULT_DATA_DIR;
  if (!validAbsPath(dataDir)) throw invalidConfig('ipam.dataDir', 'must be an absolute path');
  if (file?.mtu !== undefined && !(Number.isInteger(file.mtu) && file.mtu >= 576 && file.mtu <= 65535)) {
    throw invalidConfig('ipam.subnetFile', `mtu ${file.mtu} is out of range`);
  }
  return {
    pools,
    routes: parseRoutes(ipam.routes, 'ipam.routes'),
    dataDir,
    mtu: file?.mtu,
    clusterCIDR: file?.clusterCIDR,
    ...(file?.podsViaNode ? { podsViaNode: true } : {}),
  };
}
