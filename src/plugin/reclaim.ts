// What is left of attachments that are gone, found without their calls: GC's stale attachments and the
// reservations a full slice reclaims. Their host veths (their names derive from the attachment) and their
// nat rules go, all of them at once — one `ip` and one list/transaction or save/restore per family however
// many there are (a node back from a reboot may reclaim a hundred) — before their addresses are released.
import type { Attachment, Context } from '../cni/types.js';
import type { ReclaimHooks } from '../ipam/ipam.js';
import { deleteLinks } from '../kernel/links.js';
import { attachmentNames } from '../kernel/names.js';
import { readState } from '../kernel/state.js';
import type { BridgeConf } from './config.js';
import { removeOthersNat } from '../nat/pod.js';
import { installed } from '../kernel/tools.js';

/**
 * Runs every step even when one fails, then throws the first failure: a teardown must not stop half-way.
 * At the same time: they touch different things (links; nat rules), and each waits in the kernel (deleting
 * a veth, and committing an nftables transaction that deletes elements, each wait ~10-20 ms for RCU), so
 * the waits overlap instead of adding up.
 */
export async function runAll(steps: (() => Promise<unknown>)[]): Promise<void> {
  const done = await Promise.allSettled(steps.map((step) => step()));
  const failed = done.find((d) => d.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** Removes what other attachments (not the call's own) left on the host: their veths and their nat rules. */
export async function teardownOthers(ctx: Context, bc: BridgeConf, owners: readonly Attachment[]): Promise<void> {
  const names = owners.map((a) => attachmentNames(ctx.conf.name, a.containerID, a.ifname));
  await runAll([() => deleteLinks(names.map((n) => n.hostVeth)), () => removeOthersNat(ctx, bc, names), () => unbindOthers(bc, names)]);
}

/** Their bindings to their ports (guard/table.ts): one listing, one transaction, however many. */
async function unbindOthers(bc: BridgeConf, names: readonly { hostVeth: string }[]): Promise<void> {
  if (!bc.spoofChecks || !installed('nft')) return;
  const { unbindPorts } = await import('../guard/table.js');
  await unbindPorts(names.map((n) => n.hostVeth));
}

/**
 * How podwire tells the IPAM that a reserved address's pod is gone, for reclaiming it when the slice is
 * full: every podwire pod has a host veth whose name derives from its attachment, and the kernel deletes
 * it with the pod's namespace. So a reservation (old enough not to be an ADD in flight) whose veth is
 * missing belongs to a pod whose namespace was deleted without a DEL. What it left besides the address
 * (hostPort and masquerade rules) goes with it.
 */
export function reclaimHooks(ctx: Context, bc: BridgeConf): ReclaimHooks {
  return {
    async gone(owners) {
      const { links } = await readState(undefined);
      const present = new Set(links.map((l) => l.ifname));
      return owners.map((o) => {
        const veth = attachmentNames(ctx.conf.name, o.containerID, o.ifname).hostVeth;
        return present.has(veth) ? undefined : `its host veth ${veth} is gone: the pod's network namespace was deleted without a DEL`;
      });
    },
    cleanup: (owners) => teardownOthers(ctx, bc, owners),
  };
}
