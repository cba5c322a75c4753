// podwire-ipam: the built-in allocator as a standalone IPAM plugin, for any main plugin
// (e.g. the reference bridge with "ipam": {"type": "podwire-ipam", ...}).
import type { Plugin } from '../cni/types.js';
import { builtinIpam } from './ipam.js';

export const ipamPlugin: Plugin = {
  async add(ctx) {
    return (await builtinIpam.prepare(ctx).allocate()).result;
  },
  del: (ctx) => builtinIpam.del(ctx),
  check: (ctx) => builtinIpam.check(ctx),
  gc: async (ctx) => {
    await builtinIpam.gc(ctx);
  },
  status: (ctx) => builtinIpam.status(ctx),
};
