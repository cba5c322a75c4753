// A pod's rules on the firewall, behind one interface with its two backends: nftables (elements of table
// inet podwire, one transaction for every family; nftables.ts) and iptables (chains of the pod's own in the
// nat table, one save/restore per family; nat/). The plugin asks `podFirewall(backend)` once and never
// branches on which it got. nftables.ts is loaded only when an nftables backend is asked for: an ADD or
// DEL without hostPorts or ipMasq never loads it.
import type { Step } from '../kernel/step.js';
import type { FirewallBackend } from './choose.js';
import type { PodRules } from './rules.js';
export type { PodRules, PortMapping } from './rules.js';
import { familyOf } from '../net/ip.js';

/** An attachment's names on the firewall: its owner hash (nftables comments) and its chains (iptables). */
export interface RuleOwner {
  owner: string;
  masqChain: string;
  hostportChain: string;
}

export interface PodFirewall {
  readonly backend: FirewallBackend;
  /**
   * Adds one attachment's rules (`pods`: one per address with rules); `keep` gets their undo before they go
   * in: whatever part was made, all of it goes. Returns the trace's steps.
   */
  add(o: RuleOwner, pods: readonly PodRules[], keep: (undo: () => Promise<unknown>) => void): Promise<Step[]>;
  /**
   * Removes one attachment's rules. `known`: what its ADD made (from DEL's prevResult and runtimeConfig),
   * removed with nothing read first; undefined: whatever this owner has. `withV6`: it may have IPv6 rules.
   */
  remove(
    o: RuleOwner,
    known: readonly PodRules[] | undefined,
    what: { masq: boolean; hostports: boolean; withV6: boolean },
  ): Promise<Step | undefined>;
  /** Removes everything of these attachments (GC, reclaim): one read and one change, however many. */
  removeOwners(owners: readonly RuleOwner[], masq: boolean): Promise<unknown>;
}

const nftables: PodFirewall = {
  backend: 'nftables',
  async add(_o, pods, keep) {
    // One transaction for every family: all of it is there, or none.
    const { addPodElements, nftCommands, removePodElements } = await import('./nftables.js');
    keep(() => removePodElements(pods));
    const lines = await addPodElements(pods);
    const parts = pods.flatMap((p) => [
      ...(p.masq ? [{ id: 'part.masq' as const, p: { ip: p.ip } }] : []),
      ...p.mappings.map((m) => ({
        id: 'part.hostportTo' as const,
        p: { hostPort: m.hostPort, protocol: m.protocol, ip: p.ip, containerPort: m.containerPort },
      })),
    ]);
    return [{ id: 'nftAdd', p: { parts }, cmd: nftCommands(lines) }];
  },
  async remove(o, known) {
    const { nftCommands, removeOwners, removePodElements } = await import('./nftables.js');
    const lines = known ? await removePodElements(known) : await removeOwners(new Set([o.owner]));
    return lines.length ? { id: 'nftDel', cmd: nftCommands(lines) } : undefined;
  },
  async removeOwners(owners) {
    return (await import('./nftables.js')).removeOwners(new Set(owners.map((o) => o.owner)));
  },
};

const iptables: PodFirewall = {
  backend: 'iptables',
  async add(o, pods, keep) {
    const { addMasq, masqStep } = await import('../nat/masq.js');
    const { addHostports, hostportStep } = await import('../nat/hostport.js');
    const masq = pods.some((p) => p.masq) ? [o.masqChain] : [];
    const hostports = pods.some((p) => p.mappings.length) ? [o.hostportChain] : [];
    const withV6 = pods.some((p) => familyOf(p.ip) === 6);
    keep(() => removeChains(masq, hostports, withV6));
    const steps: Step[] = [];
    for (const p of pods.filter((x) => x.masq)) steps.push(masqStep(p.ip, p.subnet, await addMasq(o.masqChain, p.ip, p.subnet)));
    // Each family's rules go to that family's iptables.
    for (const p of pods.filter((x) => x.mappings.length)) {
      steps.push(hostportStep(p.mappings, p.ip, await addHostports(o.hostportChain, p.mappings, p.ip, p.subnet)));
    }
    return steps;
  },
  remove: (o, _known, what) => removeChains(what.masq ? [o.masqChain] : [], what.hostports ? [o.hostportChain] : [], what.withV6),
  removeOwners: (owners, masq) =>
    removeChains(
      masq ? owners.map((o) => o.masqChain) : [],
      owners.map((o) => o.hostportChain),
    ),
};

/**
 * A pod's nat chains, one save/restore per family; `withV6` when the pod may have had an IPv6 address
 * (its chains then have IPv6 twins). Returns a trace step.
 */
async function removeChains(masq: string[], hostports: string[], withV6 = true): Promise<Step | undefined> {
  const chains = [...masq, ...hostports];
  if (!chains.length) return undefined;
  const { delChains, natCommands } = await import('../nat/chains.js');
  const v4 = await delChains(chains, false);
  // ip6tables may be absent on IPv4-only nodes
  const v6 = withV6 ? await delChains(chains, true).catch(() => []) : [];
  if (!v4.length && !v6.length) return undefined;
  return { id: 'natDel', cmd: [natCommands(false, v4), natCommands(true, v6)].filter(Boolean).join('\n') };
}

export const podFirewall = (backend: FirewallBackend): PodFirewall => (backend === 'nftables' ? nftables : iptables);
