// A pod's nat rules — masquerade (ipMasq) and hostPorts (runtimeConfig.portMappings) — from what the
// plugin's call says (its config, its addresses, its prevResult), put on the node's firewall through one
// interface (firewall/backend.ts): nftables or iptables, chosen once (firewall/choose.ts), never an `if`.
import type { Context } from '../cni/types.js';
import type { Msg } from '../i18n/index.js';
import { type Cidr, type IP, familyOf, formatCidr, formatIP, parseCidr } from '../net/ip.js';
import type { Step } from '../kernel/step.js';
import type { AttachmentNames } from '../kernel/names.js';
import { type PodFirewall, type PodRules, type PortMapping, podFirewall } from '../firewall/backend.js';
import { type BridgeConf, firewallFor, parsePortMappings } from '../plugin/config.js';

/** Who the rules are for: the attachment's derived names, its config, and its call (for the element labels). */
export interface NatOwner {
  names: AttachmentNames;
  bc: BridgeConf;
  ctx: Context;
}

const backendOf = (ctx: Context, bc: BridgeConf): PodFirewall => podFirewall(firewallFor(ctx.conf, bc));

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

/** The pod's nat rules; `keep` gets their undo before they go in. Returns the trace's steps. */
export async function addNat(
  o: NatOwner,
  addrs: readonly { ip: IP; cidr: Cidr }[],
  mappings: readonly PortMapping[],
  keep: (label: Msg, undo: () => Promise<unknown>) => void,
): Promise<Step[]> {
  const pods = podRules(
    o,
    addrs.map((a) => ({ ip: formatIP(a.ip), subnet: formatCidr(a.cidr) })),
    mappings,
  );
  if (!pods.length) return [];
  const fw = backendOf(o.ctx, o.bc);
  return fw.add(o.names, pods, (undo) => keep({ id: fw.backend === 'nftables' ? 'undo.nft' : 'undo.chains' }, undo));
}

/**
 * A DEL's rules: what its prevResult (the addresses) and runtimeConfig (the mappings) say ADD made,
 * removed with no read first; without a prevResult, everything of this owner (one list more).
 */
export async function removeNat(o: NatOwner, hostports: boolean): Promise<Step | undefined> {
  const { ctx, bc } = o;
  if (!bc.ipMasq && !hostports) return undefined; // it had none: no process
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
  // It had IPv6 rules only if its result had an IPv6 address (when DEL carries the result).
  const ips = ctx.conf.prevResult?.ips;
  const withV6 = !ips?.length || ips.some((i) => familyOf(i.address) === 6);
  return backendOf(ctx, bc).remove(o.names, known ? podRules(o, addrs, mappings) : undefined, { masq: bc.ipMasq, hostports, withV6 });
}

/** The rules of attachments other than the call's own (GC, reclaim), all at once. */
export const removeOthersNat = (ctx: Context, bc: BridgeConf, names: readonly AttachmentNames[]): Promise<unknown> =>
  backendOf(ctx, bc).removeOwners(names, bc.ipMasq);
