// Which firewall the node's and the pods' rules go to: nftables (one table of podwire's own, kernel/
// nftables.ts) or iptables (chains of podwire's own in iptables' tables: kernel/firewall.ts, hostport.ts,
// masq.ts). `auto`, the default, picks nftables where `nft` is installed, iptables otherwise — unless
// iptables' FORWARD chain drops by policy (Docker sets it so): nf_tables runs every table's base chain
// on a hook and a packet passes only if each accepts it, so an accept in podwire's table cannot overrule
// that DROP, while a rule in iptables' own FORWARD chain can (node up checks this; the plugin, which writes
// only nat rules, does not need to).
import { sys } from '../files.js';

export type FirewallBackend = 'nftables' | 'iptables';
export type FirewallSetting = FirewallBackend | 'auto';
export const FIREWALL_SETTINGS: readonly FirewallSetting[] = ['auto', 'nftables', 'iptables'];

export const isFirewallSetting = (v: unknown): v is FirewallSetting => FIREWALL_SETTINGS.includes(v as FirewallSetting);

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

/** The directories of PATH holding an executable `name` (a few stat calls: cheap enough for the plugin). */
export function onPath(name: string, path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): boolean {
  return path.split(':').some((d) => d.startsWith('/') && sys().exists(`${d}/${name}`));
}

/**
 * Where the host's own tools are, when this process runs in a container (the agent): the plugin runs on
 * the host, so the host must have the chosen backend's tool too, not only the agent's image.
 */
let hostTools: string | undefined;
export function useHostTools(dir: string | undefined): void {
  hostTools = dir || undefined;
}
/** `name` is installed here and, for an agent in a container, on the host too. */
export const installed = (name: string): boolean => onPath(name) && (!hostTools || onPath(name, hostTools));

export interface FirewallFacts {
  nft: boolean;
  iptables: boolean;
  /** iptables' filter FORWARD policy, when iptables is there and could be read. */
  forwardPolicy?: string;
  /** The kernel's release (uname -r), when known. */
  kernel?: string;
}

/** The first kernel with all nftables needs of podwire's table: NAT in the inet family (5.2) and intervals in concatenated sets (5.6). */
export const NFTABLES_KERNEL = [5, 6] as const;

/** Whether a release ("6.1.0-18-amd64", "4.18.0-553.el8") is at least major.minor; undefined when it cannot be read. */
export function kernelAtLeast(rel: string, [major, minor]: readonly [number, number]): boolean | undefined {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  if (!m) return undefined;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

/** The backend for a setting on this machine, and why (pure). */
export function pickFirewall(setting: FirewallSetting, f: FirewallFacts): { backend: FirewallBackend; why: string } {
  if (setting !== 'auto') return { backend: setting, why: `as configured (${setting})` };
  if (!f.nft && !f.iptables) return { backend: 'nftables', why: 'auto: neither nft nor iptables is installed; nftables expected' };
  if (!f.nft) return { backend: 'iptables', why: 'auto: nft is not installed, iptables is' };
  if (f.iptables && f.kernel && kernelAtLeast(f.kernel, NFTABLES_KERNEL) === false) {
    return {
      backend: 'iptables',
      why: `auto: kernel ${f.kernel} is older than ${NFTABLES_KERNEL.join('.')}, which podwire's nftables table needs (NAT in the inet family, ranges in concatenated sets)`,
    };
  }
  if (!f.iptables) return { backend: 'nftables', why: 'auto: nft is installed and iptables is not' };
  if (f.forwardPolicy === 'DROP') {
    return {
      backend: 'iptables',
      why: "auto: iptables' FORWARD policy is DROP (Docker's, or a firewall's), and only a rule in that chain can let pod traffic through",
    };
  }
  return { backend: 'nftables', why: 'auto: nft is installed (nf_tables: one table of podwire, elements per pod)' };
}
