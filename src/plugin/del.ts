// DEL: what ADD made for this attachment goes, with nothing read first. The host veth's deletion starts
// first (the kernel takes ~20 ms over it; the pod's end goes with it) and the address is released while it
// runs; its nat rules at the same time, when it may have some (ipMasq, or a runtimeConfig that carries
// portMappings or does not say). Every part finishes even if another fails: whatever else goes wrong, the
// IP must not leak. Processes: 1 (`ip -force -batch`), and one `nft` or a save/restore per family for nat.
import type { Attachment, Context } from '../cni/types.js';
import { ipamFor } from '../ipam/ipam.js';
import type { Step } from '../kernel/step.js';
import { deleteLinks } from '../kernel/links.js';
import { HOST_VETH_RE, attachmentNames } from '../kernel/names.js';
import { ipCommand } from '../kernel/run.js';
import { type BridgeConf, mayHaveHostports, parseBridgeConf, subnetFileOf } from './config.js';
import { gateUp } from '../nodestate/reports.js';
import { installed } from '../kernel/tools.js';
import { removeNat } from '../nat/pod.js';
import { runAll } from './reclaim.js';
import { formatIP, parseCidr } from '../net/ip.js';
import { validMac } from '../net/mac.js';

/** The addresses prevResult says the attachment had; only real addresses, as they reach commands. */
const prevIPs = (ctx: Context): string[] =>
  (ctx.conf.prevResult?.ips ?? []).flatMap((i) => {
    const c = parseCidr(i.address);
    return c ? [formatIP({ family: c.family, value: c.ip })] : [];
  });

/** Host veths to delete for the call's own attachment: the derived name, plus any named in prevResult. */
function hostVeths(ctx: Context, a: Attachment): string[] {
  const names = new Set([attachmentNames(ctx.conf.name, a.containerID, a.ifname).hostVeth]);
  for (const i of ctx.conf.prevResult?.interfaces ?? []) {
    if (!i.sandbox && HOST_VETH_RE.test(i.name)) names.add(i.name);
  }
  return [...names];
}

/** Removes what ADD made on the host for the call's own attachment: its veths and its nat rules, side by side. */
async function teardown(ctx: Context, bc: BridgeConf, a: Attachment): Promise<Step[]> {
  const veths = hostVeths(ctx, a);
  const names = attachmentNames(ctx.conf.name, a.containerID, a.ifname);
  // Side by side; told in this order, whichever finishes first.
  const told: Step[][] = [[], [], [], []];
  await runAll([
    async () => {
      const forget = prevIPs(ctx).map((ip) => ({ ip, dev: bc.bridge }));
      const missing = await deleteLinks(veths, forget);
      for (const n of veths) {
        told[0]!.push(
          missing.includes(n)
            ? { id: 'vethGone', p: { host: n } }
            : { id: 'vethDel', p: { host: n, ifname: a.ifname }, cmd: ipCommand(`link del dev ${n}`) },
        );
      }
    },
    async () => {
      const step = await removeNat({ names, bc, ctx }, mayHaveHostports(ctx));
      if (step) told[1]!.push(step);
    },
    async () => {
      const step = await unbind(ctx, bc, names.hostVeth);
      if (step) told[2]!.push(step);
    },
    async () => {
      // Held at the gate and never placed (deleted before the agent saw it): released, so nothing is left.
      const ips = prevIPs(ctx);
      if (!ips.length || !gateUp(subnetFileOf(ctx.conf))) return;
      const { gateApply, releaseLines } = await import('../policy/gate.js');
      const lines = releaseLines(ips);
      if (await gateApply(lines)) told[3]!.push({ id: 'gateRelease', cmd: lines.map((l) => `nft ${l}`).join('\n') });
    },
  ]);
  return told.flat();
}

/**
 * The pod's binding to its port (guard/table.ts) removed: from what its prevResult says ADD bound (no read
 * first), or, without one, from what the table holds for the port (one listing more).
 */
async function unbind(ctx: Context, bc: BridgeConf, port: string): Promise<Step | undefined> {
  if (!bc.spoofChecks || !installed('nft')) return undefined;
  const { unbindPorts } = await import('../guard/table.js');
  const prev = ctx.conf.prevResult;
  const mac = prev?.interfaces?.find((i) => i.sandbox && i.name === ctx.env.ifname)?.mac;
  const ips = prevIPs(ctx);
  return (await unbindPorts([port], validMac(mac) && ips.length ? [{ port, mac, ips }] : undefined))
    ? { id: 'unbind', p: { host: port } }
    : undefined;
}

export async function del(ctx: Context): Promise<void> {
  const bc = parseBridgeConf(ctx.conf);
  const removing = teardown(ctx, bc, ctx.env);
  const [removed, released] = await Promise.allSettled([removing, ipamFor(ctx).del(ctx)]);
  if (released.status === 'fulfilled') ctx.trace?.step(released.value, 'note.withHostDel');
  if (removed.status === 'fulfilled') for (const s of removed.value) ctx.trace?.step(s);
  for (const o of [released, removed]) if (o.status === 'rejected') throw o.reason;
}
