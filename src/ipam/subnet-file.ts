// The node subnet file: the node agent writes it (`podwire node up`, `podwire agent`), the plugin's IPAM
// reads it (ipam/config.ts, "ipam": {"subnetFile": ...}). One type for both sides, and nothing of the CNI
// protocol, so the node agent can use it without knowing a plugin.
//   {"podCIDR": "10.244.1.0/24", "clusterCIDR": "10.244.0.0/16", "mtu": 1450}

export interface SubnetFile {
  /** The node's slice of the cluster network: required. */
  podCIDR: string;
  clusterCIDR?: string;
  /** The pod MTU, used when the plugin's config sets none. */
  mtu?: number;
}

export const DEFAULT_SUBNET_FILE = '/run/podwire/subnet.json';

export const formatSubnetFile = (f: SubnetFile): string => JSON.stringify(f, null, 2) + '\n';
