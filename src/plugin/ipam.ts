// podwire-ipam: the built-in allocator as a standalone IPAM plugin, for any main plugin
// (e.g. the reference bridge with "ipam": {"type": "podwire-ipam", ...}).
import type { Plugin } from '../cni/types.js';
import { builtinIpam } from '../ipam/ipam.js';
import { requestedIP, validAttachments } from './config.js';

export const ipamPlugin: Plugin = {
  async add(ctx) {
    const got = await (await builtinIpam.prepare(ctx, (family) => requestedIP(ctx, family))).allocate();
    ctx.trace?.step(got.step);
    return got.result;
  },
  async del(ctx) {
    const step = await builtinIpam.del(ctx); // not inside ?.(): that would skip the call when there is no trace
    ctx.trace?.step(step);
  },
  check: (ctx) => builtinIpam.check(ctx),
  gc: async (ctx) => {
    await builtinIpam.gc(ctx, validAttachments(ctx));
  },
  status: (ctx) => builtinIpam.status(ctx),
};
