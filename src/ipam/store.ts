// The allocator's view of reservations. Two implementations: disk-store.ts (host-local's layout, used by
// the plugin) and test/helpers/memory-store.ts (tests). Keys are formatted IP strings ("10.244.1.5", "fd00::5").
import type { Attachment } from '../cni/types.js';
import type { Family } from '../net/ip.js';

export interface Store {
  /** Serialises GCs (and excludes host-local's); resolves to the unlock function. ADD and DEL need no lock. */
  lock(): Promise<() => void>;
  /** Every reservation, IP -> owner: for DEL, GC and status, which read the whole store. */
  list(): Map<string, Attachment>;
  /** The address of `family` the owner holds, found without reading every reservation (ADD). */
  heldBy(owner: Attachment, family: Family): string | undefined;
  /**
   * The owner is being set up again with the address it holds: the reservation counts as made now, in
   * this boot. False when it is not the owner's any more (released meanwhile): the ADD takes a new one.
   */
  keep(ip: string, owner: Attachment): boolean;
  /**
   * Reserves ip for owner, atomically and exclusively, and records it as the last reserved of range set
   * `range` (one per slice, as host-local numbers them); false when it is taken.
   */
  reserve(ip: string, owner: Attachment, range?: number): boolean;
  release(ip: string, owner: Attachment): void;
  /** The last IP reserved in range set `range` (default 0), where round-robin resumes. */
  lastReserved(range?: number): string | undefined;
}

export const sameOwner = (a: Attachment, b: Attachment): boolean => a.containerID === b.containerID && a.ifname === b.ifname;

/** Where a reservation comes from: made in an earlier boot, in this one, or unknown (before podwire recorded boots, or by host-local). */
export interface Provenance {
  boot: 'earlier' | 'this' | 'unknown';
  /** Since the reservation was written (wall clock). */
  ageMs: number;
}

export interface Reclaimed {
  ip: string;
  owner: Attachment;
  why: string;
}

/** What reclaiming stale reservations needs of a store, beyond Store (called under its lock). */
export interface Reclaimable {
  provenance(ip: string): Provenance | undefined;
  /** Releases ip only while `owner` still holds it (a late DEL and a new ADD may race): true when it did. */
  releaseIfHeld(ip: string, owner: Attachment): boolean;
  /** Drops what earlier boots left behind (their boot records). */
  forgetEarlierBoots(): void;
  /** Adds to the record of reclaims that status reads. */
  recordReclaims(r: Reclaimed[]): void;
}
