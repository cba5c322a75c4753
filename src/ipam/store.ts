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
  /** Reserves ip for owner, atomically and exclusively, and records it as the last reserved; false when it is taken. */
  reserve(ip: string, owner: Attachment): boolean;
  release(ip: string, owner: Attachment): void;
  /** The last IP reserved, where round-robin resumes. */
  lastReserved(): string | undefined;
}

export const sameOwner = (a: Attachment, b: Attachment): boolean => a.containerID === b.containerID && a.ifname === b.ifname;
