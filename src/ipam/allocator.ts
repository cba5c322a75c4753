// Address allocation as pure logic over a Store.
//
// ADD and DEL take no lock: a reservation is made by an exclusive create (Store.reserve is link(2) on disk,
// which fails when the name exists; host-local creates with O_EXCL), so two ADDs racing for one address
// cannot both win, and the loser moves on to the next. What a lock would add is only an order among
// ADDs, and it cost a process per pod and serialised every ADD and DEL of a node behind one file (the
// burst benchmark: 8 DELs at once queued on it). The CNI spec forbids parallel calls for one container,
// so "does this owner hold an address already" needs no lock either. GC still takes the lock: it frees
// addresses of many owners at once and host-local's GC does the same.
import { CniError, Code } from '../cni/errors.js';
import type { Attachment } from '../cni/types.js';
import type { Pool } from './config.js';
import { type IP, cidrContains, formatIP, parseIP } from '../net/ip.js';
import { type Reclaimable, type Reclaimed, type Store, sameOwner } from './store.js';

export interface Allocation {
  ip: IP;
  /** True when the owner already held this address (a repeated ADD): undo must not release it. */
  existing: boolean;
}

const inPool = (pool: Pool, ip: IP): boolean => cidrContains(pool.subnet, ip) && ip.value >= pool.start && ip.value <= pool.end;

/**
 * Takes an address for `owner`: the one it already holds (a repeated ADD), the one it asked for, or the
 * next free one after the last handed out. Reads no other reservation: a taken address is found by
 * trying it (Store.reserve fails), which round-robin makes rare.
 */
export function allocate(store: Store, pool: Pool, owner: Attachment, requested?: IP, range = 0): Allocation {
  const family = pool.subnet.family;
  const held = parseIP(store.heldBy(owner, family) ?? '');
  // A repeated ADD (a retry, a container started again after a reboot) keeps its address, which is
  // from then on this boot's and new again: reclaiming must not take it for a dead pod's.
  if (held && cidrContains(pool.subnet, held) && (!requested || requested.value === held.value) && store.keep(formatIP(held), owner))
    return { ip: held, existing: true };
  if (requested) {
    const text = formatIP(requested);
    if (!inPool(pool, requested) || requested.value === pool.gateway.value) {
      throw new CniError(
        Code.AddressUnavailable,
        `requested IP ${text} is not in the allocatable range of ${formatIP({ family, value: pool.subnet.first })}/${pool.subnet.prefix}`,
      );
    }
    if (!store.reserve(text, owner, range)) {
      const holder = store.list().get(text);
      throw new CniError(
        Code.AddressUnavailable,
        `requested IP ${text} is already allocated${holder ? ` to ${holder.containerID}/${holder.ifname}` : ''}`,
      );
    }
    return { ip: requested, existing: false };
  }
  // Round-robin: resume after the last reserved address so a just-freed IP is not handed out again at once
  // (a peer may still hold it in an ARP cache or a conntrack entry).
  const last = parseIP(store.lastReserved(range) ?? '');
  const size = pool.end - pool.start + 1n;
  const begin = last && last.family === family && last.value >= pool.start && last.value < pool.end ? last.value + 1n : pool.start;
  for (let i = 0n; i < size; i++) {
    let v = begin + i;
    if (v > pool.end) v -= size;
    if (v === pool.gateway.value) continue;
    if (store.reserve(formatIP({ family, value: v }), owner, range)) return { ip: { family, value: v }, existing: false };
  }
  throw new CniError(
    Code.NoFreeAddress,
    `no free IP address left in ${formatIP({ family, value: pool.start })}-${formatIP({ family, value: pool.end })}`,
  );
}

/** Releases every address the owner holds; returns them. Releasing nothing is not an error (DEL is idempotent). */
export function release(store: Store, owner: Attachment): string[] {
  const freed: string[] = [];
  for (const [ip, o] of store.list()) {
    if (sameOwner(o, owner)) {
      store.release(ip, owner);
      freed.push(ip);
    }
  }
  return freed;
}

/**
 * Removes what attachments left outside the store (their veths, their rules). Only the plugin that wired
 * them knows what that is; it runs before their addresses are released, so that a failure leaves the
 * reservation for a later try instead of an address whose old rules (a hostPort DNAT) would greet the
 * next pod to get it.
 */
export type Cleanup = (owners: Attachment[]) => Promise<void>;

/** Each owner once: a dual-stack attachment holds a reservation per family. */
const uniqueOwners = (xs: readonly { owner: Attachment }[]): Attachment[] =>
  xs.map((x) => x.owner).filter((o, i, all) => all.findIndex((p) => sameOwner(p, o)) === i);

/** GC: releases every reservation whose owner is not among the valid attachments, after `cleanup`; returns them. */
export async function collect(store: Store, valid: readonly Attachment[], cleanup?: Cleanup): Promise<Map<string, Attachment>> {
  const unlock = await store.lock();
  try {
    const stale = [...store.list()].filter(([, o]) => !valid.some((v) => sameOwner(v, o))).map(([ip, owner]) => ({ ip, owner }));
    if (stale.length) await cleanup?.(uniqueOwners(stale));
    for (const { ip, owner } of stale) store.release(ip, owner);
    return new Map(stale.map(({ ip, owner }) => [ip, owner]));
  } finally {
    unlock();
  }
}

/**
 * An ADD takes milliseconds from reserving its address to its host veth existing (podwire starts the veth
 * before it allocates). A reservation younger than this may belong to an ADD still in flight, so its
 * missing veth proves nothing: only older ones are judged by their veth. Wall-clock age, so a clock
 * stepped forward by more than this in those milliseconds could misjudge one; an earlier boot's
 * reservations do not depend on clocks at all.
 */
export const IN_FLIGHT_MS = 60_000;

/**
 * For each owner, why its pod is certainly gone (e.g. its host veth no longer exists), or undefined when
 * it may live. Only the plugin that wired the pods can tell; without one only earlier boots are judged.
 */
export type GoneCheck = (owners: Attachment[]) => Promise<(string | undefined)[]>;

/**
 * Called when the slice is full: under the lock, cleans up after and releases the reservations whose
 * pods cannot exist any more, and returns them. Stale are: (1) reservations made in an earlier boot — every pod of that boot
 * died with it; (2) reservations older than IN_FLIGHT_MS whose pod `gone` says is gone (a pod namespace
 * deleted without DEL, a runtime that crashed). Never taken: a live pod's (its veth exists), an ADD's in
 * flight (this boot, and young), or one whose origin is unknown and whose pod nobody can check.
 */
export async function reclaimStale(store: Store & Reclaimable, gone?: GoneCheck, cleanup?: Cleanup): Promise<Reclaimed[]> {
  const unlock = await store.lock();
  try {
    const held = [...store.list()].map(([ip, owner]) => ({ ip, owner, from: store.provenance(ip) }));
    const earlier = held.filter((h) => h.from?.boot === 'earlier');
    const old = held.filter((h) => h.from && h.from.boot !== 'earlier' && h.from.ageMs > IN_FLIGHT_MS);
    const verdicts = gone && old.length ? await gone(old.map((h) => h.owner)) : [];
    const stale: Reclaimed[] = [
      ...earlier.map(({ ip, owner }) => ({ ip, owner, why: 'reserved in an earlier boot: every pod of that boot died with it' })),
      ...old.flatMap(({ ip, owner }, i) => (verdicts[i] ? [{ ip, owner, why: verdicts[i]! }] : [])),
    ];
    if (stale.length) await cleanup?.(uniqueOwners(stale));
    const done = stale.filter((r) => store.releaseIfHeld(r.ip, r.owner));
    store.forgetEarlierBoots();
    if (done.length) store.recordReclaims(done);
    return done;
  } finally {
    unlock();
  }
}

/** How many addresses the pool hands out (gateway excluded) and how many of them `taken` holds. */
export function usage(pool: Pool, taken: Iterable<string>): { size: bigint; used: bigint } {
  let used = 0n;
  for (const ip of taken) {
    const p = parseIP(ip);
    if (p && inPool(pool, p) && p.value !== pool.gateway.value) used++;
  }
  const gatewayInRange = inPool(pool, pool.gateway) ? 1n : 0n;
  return { size: pool.end - pool.start + 1n - gatewayInRange, used };
}

/** Addresses still free in the pool (gateway excluded). */
export function freeCount(store: Store, pool: Pool): bigint {
  const u = usage(pool, store.list().keys());
  return u.size - u.used;
}

/** The first of the pools with no address left, if any: an ADD would fail on it. */
export const fullPool = (store: Store, pools: readonly Pool[]): Pool | undefined => pools.find((p) => freeCount(store, p) <= 0n);

/** The addresses the owner holds (for CHECK). */
export function holdings(store: Store, owner: Attachment): string[] {
  return [...store.list()].filter(([, o]) => sameOwner(o, owner)).map(([ip]) => ip);
}
