// The node subnet file: the node agent writes it (`podwire node up`, `podwire agent`), the plugin's IPAM
// reads it (ipam/config.ts, "ipam": {"subnetFile": ...}). One type for both sides, and nothing of the CNI
// protocol, so the node agent can use it without knowing a plugin.
//   {"podCIDR": "10.244.1.0/24", "clusterCIDR": "10.244.0.0/16", "mtu": 1450}
// A dual-stack node also lists both slices (and cluster networks), IPv4 first; podCIDR stays the first,
// so a reader that knows one family reads it as before:
//   {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/64"], ...}

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
}

export const DEFAULT_SUBNET_FILE = '/run/podwire/subnet.json';

export const formatSubnetFile = (f: SubnetFile): string => JSON.stringify(f, null, 2) + '\n';
