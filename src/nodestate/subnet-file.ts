// The node subnet file: the node agent writes it (`podwire node up`, `podwire agent`), the plugin's IPAM
// reads it (ipam/config.ts, "ipam": {"subnetFile": ...}), and so do `status`, `doctor` and the lab. One
// type, one reader and one writer for all of them, and nothing of the CNI protocol: what a failure means
// to a caller (a CNI code, a finding) is the caller's to say.
//   {"podCIDR": "10.244.1.0/24", "clusterCIDR": "10.244.0.0/16", "mtu": 1450, "firewall": "nftables"}
// A dual-stack node also lists both slices (and cluster networks), IPv4 first; podCIDR stays the first,
// so a reader that knows one family reads it as before:
//   {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/64"], ...}
import { sys, writeIfChanged } from '../runtime/files.js';

export interface SubnetFile {
  /** The node's slice of the cluster network (the first, when there are two): required. */
  podCIDR: string;
  /** Both slices on a dual-stack node, IPv4 first. */
  podCIDRs?: string[];
  clusterCIDR?: string;
  clusterCIDRs?: string[];
  /** The pod MTU, used when the plugin's config sets none. */
  mtu?: number;
  /** The node's firewall backend as node up chose it: the plugin writes pods' rules there too. */
  firewall?: 'nftables' | 'iptables';
  /**
   * Every pod packet goes through the node (node up set the node up for it: no ICMP redirect to pods):
   * the plugin gives each pod its subnet without an on-link route, reached via its gateway.
   */
  podsViaNode?: boolean;
}

export const DEFAULT_SUBNET_FILE = '/run/podwire/subnet.json';

export const formatSubnetFile = (f: SubnetFile): string => JSON.stringify(f, null, 2) + '\n';

/** Why a subnet file could not be used: not there (yet), not readable, or not a subnet file. */
export class SubnetFileError extends Error {
  constructor(
    readonly kind: 'missing' | 'unreadable' | 'invalid',
    readonly path: string,
    why: string,
  ) {
    super(why);
  }
}

/** Checks the shape a reader relies on; throws (with what is wrong) otherwise. */
function decode(text: string): SubnetFile {
  const f = JSON.parse(text) as SubnetFile;
  if (!f || typeof f !== 'object' || typeof f.podCIDR !== 'string') throw new Error('podCIDR missing');
  if (f.podCIDRs !== undefined && (!Array.isArray(f.podCIDRs) || f.podCIDRs.some((c) => typeof c !== 'string'))) {
    throw new Error('podCIDRs must be a list of networks');
  }
  if (f.mtu !== undefined && typeof f.mtu !== 'number') throw new Error('mtu must be a number');
  if (f.firewall !== undefined && f.firewall !== 'nftables' && f.firewall !== 'iptables')
    throw new Error('firewall must be nftables or iptables');
  if (f.podsViaNode !== undefined && typeof f.podsViaNode !== 'boolean') throw new Error('podsViaNode must be true or false');
  return f;
}

/** The subnet file, read and checked once; a SubnetFileError says why not. */
export function readSubnetFile(path: string): SubnetFile {
  let text: string | undefined;
  try {
    text = sys().readText(path);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new SubnetFileError(missing ? 'missing' : 'unreadable', path, (e as Error).message);
  }
  if (text === undefined) throw new SubnetFileError('missing', path, 'no such file');
  try {
    return decode(text);
  } catch (e) {
    throw new SubnetFileError('invalid', path, (e as Error).message);
  }
}

/** The file, or undefined when it is missing or unusable (for readers that only look). */
export function trySubnetFile(path: string | undefined): SubnetFile | undefined {
  try {
    return path ? readSubnetFile(path) : undefined;
  } catch {
    return undefined;
  }
}

/** Written whole, by rename, only when its content changes; true when it did. */
export const writeSubnetFile = (path: string, f: SubnetFile): boolean => writeIfChanged(path, formatSubnetFile(f));
