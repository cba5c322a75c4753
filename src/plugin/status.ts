// STATUS: whether the plugin can take an ADD now: the IPAM has its slice and a free address (a full
// slice first reclaims what pods gone without a DEL left: reclaim.ts).
import type { Context } from '../cni/types.js';
import { ipamFor } from '../ipam/ipam.js';
import { parseBridgeConf } from './config.js';
import { reclaimHooks } from './reclaim.js';

export async function status(ctx: Context): Promise<void> {
  const bc = parseBridgeConf(ctx.conf);
  await ipamFor(ctx).status(ctx, reclaimHooks(ctx, bc));
}
