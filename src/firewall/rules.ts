// What a pod has on the firewall, the same for both backends: its hostPorts and its masquerade, per address.

/** One hostPort of a pod, as runtimeConfig.portMappings gives it. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  hostIP?: string;
}

/** What one attachment has in the firewall, per address (family): the same for both backends. */
export interface PodRules {
  /** The attachment's 16 hex digits (kernel/names.ts): in its chains' names and its elements' comments. */
  owner: string;
  /** "containerID/ifname" when known (nftables element comments carry it; iptables chains only the hash). */
  label?: string;
  /** The pod's address (no prefix) and its subnet (CIDR). */
  ip: string;
  subnet: string;
  /** ipMasq: what it sends outside its subnet leaves with the node's address. */
  masq: boolean;
  mappings: PortMapping[];
}
