// A pod's nat rules — masquerade (ipMasq) and hostPorts (runtimeConfig.portMappings) — on the node's
// firewall backend: elements of table inet podwire (nftables: one transaction for every family), or
// chains of the pod's own in iptables' nat table (one save/restore per family).
import type { Context } from '../cni/types.js';
import type { Msg } from '../i18n/index.js';
import { type Cidr, type IP, familyOf, formatCidr, formatIP, parseCidr } from '../net/ip.js';
import type { Step } from '../kernel/step.js';
import type { PodRules } from '../kernel/backend.js';
import { delChains, natCommands } from '../kernel/chains.js';
import { type PortMapping, addHostports, hostportStep } from '../kernel/hostport.js';
import { addMasq, masqStep } from '../kernel/masq.js';
import type { AttachmentNames } from '../kernel/names.js';
import { type BridgeConf, firewallFor, parsePortMappings } from './config.js';

// kernel/nftables.ts is loaded only by the calls that write nftables elements (a pod with hostPorts or
// ipMasq, their DEL, GC, reclaim): every other ADD and DEL pays nothing for it.
const nft = () => import('../kernel/nftables.js');

/** Who the rules are for: the attachment's derived names, its config, and its call (for the element labels). */
export interface NatOwner {
  names: AttachmentNames;
  bc: BridgeConf;
  ctx: Context;
}

/** One attachment's rules per address, as both backends describe them. */
export function podRules(o: NatOwner, addrs: readonly { ip: string; subnet: string }[], mappings: readonly PortMapping[]): PodRules[] {
  const label = `${o.ctx.env.containerID}/${o.ctx.env.ifname}`;
  return addrs
    .map((a) => ({
      owner: o.names.owner,
      label,
      ip: a.ip,
      subnet: a.subnet,
      masq: o.bc.ipMasq,
      // A hostPort answers in every family the pod has, unless its hostIP names one.
      mappings: mappings.filter((m) => !m.hostIP || familyOf(m.hostIP) === familyOf(a.ip)),
    }))
    .filter((p) => p.masq || p.mappings.length);
}

/**
 * The pod's nat rules: masquerade and hostPorts. `keep` gets the undo before the rules go in: whatever part
 * of them was made, all of it goes. Returns the trace's steps.
 */
export async function addNat(
  o: NatOwner,
  addrs: readonly { ip: IP; cidr: Cidr }[],
  mappings: readonly PortMapping[],
  keep: (label: Msg, undo: () => Promise<unknown>) => void,
): Promise<Step[]> {
  const steps: Step[] = [];
  const pods = podRules(
    o,
    addrs.map((a) => ({ ip: formatIP(a.ip), subnet: formatCidr(a.cidr) })),
    mappings,
  );
  if (!pods.length) return steps;
  if (firewallFor(o.ctx.conf, o.bc) === 'nftables') {
    // One transaction for every family: all of it is there, or none.
    const { addPodElements, nftCommands, removePodElements } = await nft();
    keep({ id: 'undo.nft' }, () => removePodElements(pods));
    const lines = await addPodElements(pods);
    const parts = pods.flatMap((p): Msg[] => [
      ...(p.masq ? [{ id: 'part.masq', p: { ip: p.ip } } as const] : []),
      ...p.mappings.map((m) => ({
        id: 'part.hostportTo' as const,
        p: { hostPort: m.hostPort, protocol: m.protocol, ip: p.ip, containerPort: m.containerPort },
      })),
    ]);
    steps.push({ id: 'nftAdd', p: { parts }, cmd: nftCommands(lines) });
    return steps;
  }
  const masq = o.bc.ipMasq ? [o.names.masqChain] : [];
  const hostports = mappings.length ? [o.names.hostportChain] : [];
  keep({ id: 'undo.chains' }, () =>
    removePodChains(
      masq,
      hostports,
      addrs.some((a) => a.cidr.family === 6),
    ),
  );
  for (const p of pods.filter((x) => x.masq)) {
    const lines = await addMasq(o.names.masqChain, p.ip, p.subnet);
    steps.push(masqStep(p.ip, p.subnet, lines));
  }
  // Each family's rules go to that family's iptables.
  for (const p of pods.filter((x) => x.mappings.length)) {
    const done = await addHostports(o.names.hostportChain, p.mappings, p.ip, p.subnet);
    steps.push(hostportStep(p.mappings, p.ip, done));
  }
  return steps;
}

/**
 * A pod's nat chains, one save/restore per family; `withV6` when the pod may have had an IPv6 address
 * (its chains then have IPv6 twins). Returns a trace step.
 */
export async function removePodChains(masq: string[], hostports: string[], withV6 = true): Promise<Step | undefined> {
  const chains = [...masq, ...hostports];
  const v4 = await delChains(chains, false);
  // ip6tables may be absent on IPv4-only nodes
  const v6 = withV6 && chains.length ? await delChains(chains, true).catch(() => []) : [];
  if (!v4.length && !v6.length) return undefined;
  return { id: 'natDel', cmd: [natCommands(false, v4), natCommands(true, v6)].filter(Boolean).join('\n') };
}

/**
 * A DEL's rules: with nftables, the elements its prevResult (the addresses) and runtimeConfig (the
 * mappings) say ADD made, removed in one transaction with no read first — without a prevResult, the table
 * is read and everything of this owner removed (one list more); with iptables, its chains.
 */
export async function removeNat(o: NatOwner, hostports: boolean): Promise<Step | undefined> {
  const { ctx, bc, names } = o;
  if (!bc.ipMasq && !hostports) return undefined; // it had none: no process
  if (firewallFor(ctx.conf, bc) !== 'nftables') {
    // It had IPv6 rules only if its result had an IPv6 address (when DEL carries the result).
    const ips = ctx.conf.prevResult?.ips;
    const withV6 = !ips?.length || ips.some((i) => familyOf(i.address) === 6);
    return removePodChains(bc.ipMasq ? [names.masqChain] : [], hostports ? [names.hostportChain] : [], withV6);
  }
  const addrs = (ctx.conf.prevResult?.ips ?? []).flatMap((i) => {
    const c = parseCidr(i.address);
    return c ? [{ ip: formatIP({ family: c.family, value: c.ip }), subnet: formatCidr(c) }] : [];
  });
  let mappings: PortMapping[] = [];
  try {
    mappings = hostports ? parsePortMappings(ctx.conf.runtimeConfig?.portMappings) : [];
  } catch {
    // ADD refused such mappings: it made none
  }
  const known = addrs.length > 0 && (!hostports || Array.isArray(ctx.conf.runtimeConfig?.portMappings));
  const { nftCommands, removeOwners, removePodElements } = await nft();
  const lines = known ? await removePodElements(podRules(o, addrs, mappings)) : await removeOwners(new Set([names.owner]));
  if (!lines.length) return undefined;
  return { id: 'nftDel', cmd: nftCommands(lines) };
}

/**
 * The rules of attachments other than the call's own (GC, reclaim), whose prevResult and runtimeConfig
 * this call does not have: their nat chains whether or not they had any, or their elements — all of them
 * at once: one list and one transaction, or one save/restore per family, however many there are.
 */
export async function removeOthersNat(ctx: Context, bc: BridgeConf, names: readonly AttachmentNames[]): Promise<unknown> {
  if (firewallFor(ctx.conf, bc) === 'nftables') return (await nft()).removeOwners(new Set(names.map((n) => n.owner)));
  return removePodChains(
    bc.ipMasq ? names.map((n) => n.masqChain) : [],
    names.map((n) => n.hostportChain),
  );
}
