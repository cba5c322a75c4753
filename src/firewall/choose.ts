// Which firewall the node's and the pods' rules go to: nftables (one table of podwire's own, nftables.ts)
// or iptables (chains of podwire's own in iptables' tables: node-iptables.ts, and nat/ for the pods').
// One function decides (chooseFirewall), for node up, the plugin and doctor alike. `auto`, the default, picks nftables where `nft` is installed, iptables otherwise — unless
// iptables' FORWARD chain drops by policy (Docker sets it so): nf_tables runs every table's base chain
// on a hook and a packet passes only if each accepts it, so an accept in podwire's table cannot overrule
// that DROP, while a rule in iptables' own FORWARD chain can (node up checks this; the plugin, which writes
// only nat rules, does not need to).
import { kernelAtLeast, onPath } from '../kernel/tools.js';

export type FirewallBackend = 'nftables' | 'iptables';
export type FirewallSetting = FirewallBackend | 'auto';
export const FIREWALL_SETTINGS: readonly FirewallSetting[] = ['auto', 'nftables', 'iptables'];

export const isFirewallSetting = (v: unknown): v is FirewallSetting => FIREWALL_SETTINGS.includes(v as FirewallSetting);

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

/** The facts the plugin and doctor decide `auto` on: which tools are installed (no process is run). */
export const installedFacts = (): FirewallFacts => ({ nft: onPath('nft'), iptables: onPath('iptables') });

/**
 * The one answer to "where do this node's and its pods' rules go", for node up, the plugin and doctor:
 *   1. a setting that names a backend (the plugin config's firewallBackend, the cluster file's or the
 *      agent's firewall) is kept;
 *   2. without a setting, what node up decided for this node (the subnet file's "firewall"), so the pods'
 *      rules go where the node's are;
 *   3. else `auto` from the facts: node up reads them all, the plugin and doctor only what is installed.
 * `decided` and `facts` are called only when needed (a file read; node up's facts run iptables).
 */
export function chooseFirewall(
  setting: FirewallSetting | undefined,
  decided: () => FirewallBackend | undefined,
  facts: () => FirewallFacts = installedFacts,
): { backend: FirewallBackend; why: string } {
  if (setting && setting !== 'auto') return { backend: setting, why: `as configured (${setting})` };
  const node = setting === undefined ? decided() : undefined;
  if (node) return { backend: node, why: `as node up decided for this node (${node})` };
  return pickFirewall('auto', facts());
}
