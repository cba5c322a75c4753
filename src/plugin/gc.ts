// GC: attachments the runtime no longer knows (not in cni.dev/valid-attachments) lose their host-side
// leftovers (veths, nat rules: reclaim.ts) first, then their addresses.
import type { Context } from '../cni/types.js';
import { ipamFor } from '../ipam/ipam.js';
import { parseBridgeConf, validAttachments } from './config.js';
import { teardownOthers } from './reclaim.js';

export async function gc(ctx: Context): Promise<void> {
  const bc = parseBridgeConf(ctx.conf);
  await ipamFor(ctx).gc(ctx, validAttachments(ctx), (owners) => teardownOthers(ctx, bc, owners));
}
