// IPAM as a plugin uses it: the built-in allocator in-process, or any other IPAM plugin from CNI_PATH
// (host-local, ...) executed as the spec describes. The podwire plugin uses both; the standalone
// podwire-ipam plugin (plugin/ipam.ts) is the built-in one behind the CNI skeleton. What the runtime asks
// for (an address, GC's list) is read by the plugin (plugin/config.ts) and handed in.
import { CniError, Code, invalidConfig } from '../cni/errors.js';
import { execPlugin } from '../cni/exec.js';
import type { Attachment, Context, Result } from '../cni/types.js';
import type { Step } from '../kernel/step.js';
import { parseResult } from '../cni/version.js';
import { validAbsPath } from '../cni/validate.js';
import {
  type Allocation,
  type Cleanup,
  type GoneCheck,
  allocate,
  collect,
  fullPool,
  holdings,
  reclaimStale,
  release,
} from './allocator.js';
import { DEFAULT_DATA_DIR, IPAM_TYPE, type Pool, parseIpamConfig } from './config.js';
import { DiskStore } from './disk-store.js';
import { log } from '../runtime/log.js';
import { timed } from '../runtime/profile.js';
import type { Reclaimed } from './store.js';
import { type Cidr, type Family, type IP, formatCidr, formatIP, parseIP } from '../net/ip.js';

export interface IpamAdd {
  /** An abbreviated result: ips (no interface index), routes, dns. */
  result: Result;
  /** What was done, for the trace. */
  step: Step;
  /** Undo for a failed ADD: releases what this ADD reserved, and nothing a previous ADD reserved. */
  undo: () => Promise<void>;
}

/** An ADD whose config has been read but whose address is not yet allocated. */
export interface PreparedAdd {
  /**
   * The gateways (one per slice), when they are known before allocation (built-in IPAM: from the config).
   * The caller can then wire the host side while the allocation runs.
   */
  gateways?: { subnet: Cidr; ip: IP; field: string }[];
  /** The built-in IPAM's store directory for this network: where the plugin may keep a small note of its own. */
  storeDir?: string;
  /** MTU from the node subnet file, when the slice came from there. */
  mtu?: number;
  /** Pods route their subnet via the node (the subnet file says so). */
  podsViaNode?: boolean;
  allocate(): Promise<IpamAdd>;
}

/** What the plugin that wires the pods lends the IPAM for reclaiming stale reservations (allocator.ts). */
export interface ReclaimHooks {
  gone: GoneCheck;
  /** Removes what reclaimed attachments left on the host besides their address (rules, a veth), before it is released. */
  cleanup: Cleanup;
}

export interface Ipam {
  /**
   * Reads and checks the IPAM config; throws before anything is allocated. `requested`: the address the
   * runtime asked for, per family (a delegated plugin reads the same request itself). `hooks`: when the
   * slice is full, stale reservations are reclaimed (earlier boots always; with hooks, gone pods too).
   */
  prepare(ctx: Context, requested: (family: Family) => IP | undefined, hooks?: ReclaimHooks): Promise<PreparedAdd>;
  /** Returns what was done, for the trace. */
  del(ctx: Context): Promise<Step>;
  check(ctx: Context): Promise<void>;
  /** Releases what `valid` does not list, after `cleanup` removed what those attachments left on the host. */
  gc(ctx: Context, valid: readonly Attachment[], cleanup?: Cleanup): Promise<void>;
  status(ctx: Context, hooks?: ReclaimHooks): Promise<void>;
}

const owner = (ctx: Context): Attachment => ({ containerID: ctx.env.containerID, ifname: ctx.env.ifname });

function storeFor(ctx: Context, dataDir: unknown = ctx.conf.ipam?.dataDir ?? DEFAULT_DATA_DIR): DiskStore {
  if (!validAbsPath(dataDir)) throw invalidConfig('ipam.dataDir', 'must be an absolute path');
  return DiskStore.forNetwork(dataDir, ctx.conf.name);
}

/** Reclaims stale reservations (the slice is full), the plugin cleaning up after them first, and says so in the log. */
async function reclaim(store: DiskStore, hooks: ReclaimHooks | undefined): Promise<Reclaimed[]> {
  const done = await reclaimStale(store, hooks?.gone, hooks?.cleanup);
  for (const r of done)
    log.warn({ ip: r.ip, containerID: r.owner.containerID, ifname: r.owner.ifname, why: r.why }, 'reclaimed a stale reservation');
  return done;
}

/** A full slice makes ADD try reclaiming stale reservations once before it gives up (code 100). */
async function allocateOrReclaim<T>(
  store: DiskStore,
  hooks: ReclaimHooks | undefined,
  take: () => T,
): Promise<{ alloc: T; reclaimed: Reclaimed[] }> {
  try {
    return { alloc: take(), reclaimed: [] };
  } catch (e) {
    if (!(e instanceof CniError) || e.code !== Code.NoFreeAddress) throw e;
    // Tried again even when this call reclaimed nothing: a parallel ADD that held the lock first may have.
    const reclaimed = await reclaim(store, hooks);
    return { alloc: take(), reclaimed };
  }
}

/** One address per slice; undoes the ones taken when a later one fails, so a failed ADD holds nothing. */
function allocateAll(store: DiskStore, pools: readonly Pool[], who: Attachment, requested: readonly (IP | undefined)[]): Allocation[] {
  const got: Allocation[] = [];
  try {
    for (const [i, pool] of pools.entries()) got.push(allocate(store, pool, who, requested[i], i));
    return got;
  } catch (e) {
    for (const a of got) if (!a.existing) store.release(formatIP(a.ip), who);
    throw e;
  }
}

export const builtinIpam: Ipam = {
  async prepare(ctx, requestedOf, hooks) {
    const cfg = parseIpamConfig(ctx.conf.ipam);
    const store = storeFor(ctx, cfg.dataDir);
    const { pools } = cfg;
    const who = owner(ctx);
    // Read (and checked) now: a bad request changes nothing.
    const requested = pools.map((p) => requestedOf(p.subnet.family));
    return {
      gateways: pools.map((p) => ({ subnet: p.subnet, ip: p.gateway, field: p.field })),
      storeDir: store.dir,
      mtu: cfg.mtu,
      ...(cfg.podsViaNode ? { podsViaNode: true } : {}),
      async allocate() {
        const { alloc: allocs, reclaimed } = await allocateOrReclaim(store, hooks, () =>
          timed('ipam: allocate', () => allocateAll(store, pools, who, requested)),
        );
        const result: Result = {
          cniVersion: ctx.conf.cniVersion,
          ips: allocs.map((a, i) => ({ address: formatCidr(pools[i]!.subnet, a.ip.value), gateway: formatIP(pools[i]!.gateway) })),
          routes: cfg.routes,
          dns: ctx.conf.dns,
        };
        // Kept as messages: put into words (the learner's language) only if a trace is written.
        const two = pools.length > 1;
        const file = ctx.conf.ipam?.subnetFile;
        const step: Step = {
          id: 'reserve',
          p: {
            reclaimed: reclaimed.length
              ? {
                  id: 'ipam.reclaimed',
                  p: {
                    list: reclaimed.map((r) => ({
                      id: 'ipam.reclaimedOne' as const,
                      p: { ip: r.ip, containerID: r.owner.containerID, why: r.why },
                    })),
                  },
                }
              : '',
            addresses: allocs.map((a, i) => ({
              id: a.existing ? ('ipam.keep' as const) : requested[i] ? ('ipam.requested' as const) : ('ipam.next' as const),
              p: { ip: formatIP(a.ip), slice: formatCidr(pools[i]!.subnet) },
            })),
            perFamily: two ? { id: 'ipam.perFamily' } : '',
            from: file ? { id: two ? 'ipam.fromFiles' : 'ipam.fromFile', p: { file: String(file) } } : { id: 'ipam.fromConfig' },
            gateways: {
              id: two ? 'ipam.gateways' : 'ipam.gateway',
              p: { gateway: formatIP(pools[0]!.gateway), gateway2: two ? formatIP(pools[1]!.gateway) : '' },
            },
          },
          cmd: allocs
            .map((a) => `create file ${store.dir}/${formatIP(a.ip)} containing "${ctx.env.containerID}\\r\\n${ctx.env.ifname}"`)
            .join('\n'),
        };
        return {
          result,
          step,
          undo: async () => {
            for (const a of allocs) if (!a.existing) store.release(formatIP(a.ip), who);
          },
        };
      },
    };
  },

  async del(ctx): Promise<Step> {
    // Only the store's location is needed: DEL must work even when the subnet file is gone.
    const store = storeFor(ctx);
    const freed = timed('ipam: release', () => release(store, owner(ctx)));
    return freed.length
      ? { id: 'release', p: { ips: freed.join(', ') }, cmd: freed.map((ip) => `remove file ${store.dir}/${ip}`).join('\n') }
      : { id: 'releaseNone', p: { containerID: ctx.env.containerID, ifname: ctx.env.ifname } };
  },

  async check(ctx) {
    const held = holdings(storeFor(ctx), owner(ctx));
    if (held.length === 0) {
      throw new CniError(Code.UnknownContainer, `no IP address is reserved for ${ctx.env.containerID}/${ctx.env.ifname}`);
    }
    for (const ip of ctx.conf.prevResult?.ips ?? []) {
      const addr = ip.address.split('/')[0]!;
      const p = parseIP(addr);
      if (p && !held.includes(formatIP(p))) {
        throw new CniError(Code.UnknownContainer, `IP ${addr} of prevResult is not reserved for ${ctx.env.containerID}/${ctx.env.ifname}`);
      }
    }
  },

  async gc(ctx, valid, cleanup) {
    await collect(storeFor(ctx), valid, cleanup);
  },

  async status(ctx, hooks) {
    let cfg;
    try {
      cfg = parseIpamConfig(ctx.conf.ipam);
    } catch (e) {
      // A node whose agent has not written the subnet file yet is not ready: STATUS says so (50), so a
      // runtime that asks holds pods back, while ADD keeps "try again later" (11) for those that do not.
      if (e instanceof CniError && e.code === Code.TryAgainLater) throw new CniError(Code.StatusNotAvailable, e.message);
      throw e;
    }
    const store = storeFor(ctx, cfg.dataDir);
    // Full: stale reservations are reclaimed here too, or a runtime that waits for STATUS would never
    // send the ADD that reclaims them.
    if (fullPool(store, cfg.pools)) await reclaim(store, hooks);
    const full = fullPool(store, cfg.pools);
    if (full) throw new CniError(Code.StatusNotAvailable, `no free IP address left in ${formatCidr(full.subnet)}`);
  },
};

/** Another IPAM plugin, executed with the same config and environment (SPEC "Delegated plugins"). */
export function delegatedIpam(type: string): Ipam {
  const run = (ctx: Context, command: string) => execPlugin(type, command, ctx.stdin, ctx.env);
  return {
    async prepare(ctx) {
      return {
        async allocate() {
          // The caller checks the result's addresses (and runs undo if it has none).
          const result = parseResult(await run(ctx, 'ADD')) ?? { cniVersion: ctx.conf.cniVersion };
          return {
            result,
            step: {
              id: 'delegateAdd',
              p: { type, ips: result.ips?.map((i) => i.address).join(', ') || '-' },
              cmd: `CNI_COMMAND=ADD ${type} (same config and CNI_* environment)`,
            },
            undo: async () => {
              await run(ctx, 'DEL');
            },
          };
        },
      };
    },
    async del(ctx) {
      await run(ctx, 'DEL');
      return { id: 'delegateDel', p: { type }, cmd: `CNI_COMMAND=DEL ${type}` };
    },
    async check(ctx) {
      await run(ctx, 'CHECK');
    },
    async gc(ctx) {
      await run(ctx, 'GC');
    },
    async status(ctx) {
      await run(ctx, 'STATUS');
    },
  };
}

export function ipamFor(ctx: Context): Ipam {
  const type = ctx.conf.ipam?.type;
  if (type === undefined || type === IPAM_TYPE) return builtinIpam;
  if (typeof type !== 'string') throw invalidConfig('ipam.type', 'must be a string');
  return delegatedIpam(type);
}
