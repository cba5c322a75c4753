// An in-memory Store for testing the allocator as pure logic (as host-local tests its allocator with a
// fake store); the disk store is tested on disk (test/unit/disk-store.test.ts).
import type { Attachment } from '../../src/cni/types.js';
import type { Provenance, Reclaimable, Reclaimed, Store } from '../../src/ipam/store.js';
import type { Family } from '../../src/net/ip.js';

export class MemoryStore implements Store, Reclaimable {
  readonly ips = new Map<string, Attachment>();
  /** Where each reservation comes from; a test sets it (reserve() records 'this' boot, age 0). */
  readonly from = new Map<string, Provenance>();
  readonly reclaimed: Reclaimed[] = [];
  earlierBootsForgotten = 0;
  readonly last = new Map<number, string>();
  private queue: Promise<void> = Promise.resolve();

  lock(): Promise<() => void> {
    let unlock!: () => void;
    const held = new Promise<void>((r) => (unlock = r));
    const acquired = this.queue.then(() => unlock);
    this.queue = this.queue.then(() => held);
    return acquired;
  }

  list(): Map<string, Attachment> {
    return new Map(this.ips);
  }

  heldBy(owner: Attachment, family: Family): string | undefined {
    for (const [ip, o] of this.ips) {
      if (o.containerID === owner.containerID && o.ifname === owner.ifname && ip.includes(':') === (family === 6)) return ip;
    }
    return undefined;
  }

  keep(ip: string, owner: Attachment): boolean {
    const o = this.ips.get(ip);
    if (!o || o.containerID !== owner.containerID || o.ifname !== owner.ifname) return false;
    this.from.set(ip, { boot: 'this', ageMs: 0 });
    return true;
  }

  reserve(ip: string, owner: Attachment, range = 0): boolean {
    if (this.ips.has(ip)) return false;
    this.ips.set(ip, owner);
    this.from.set(ip, { boot: 'this', ageMs: 0 });
    this.last.set(range, ip);
    return true;
  }

  release(ip: string): void {
    this.ips.delete(ip);
    this.from.delete(ip);
  }

  provenance(ip: string): Provenance | undefined {
    return this.ips.has(ip) ? this.from.get(ip) : undefined;
  }

  releaseIfHeld(ip: string, owner: Attachment): boolean {
    const o = this.ips.get(ip);
    if (!o || o.containerID !== owner.containerID || o.ifname !== owner.ifname) return false;
    this.release(ip);
    return true;
  }

  forgetEarlierBoots(): void {
    this.earlierBootsForgotten++;
  }

  recordReclaims(r: Reclaimed[]): void {
    this.reclaimed.push(...r);
  }

  lastReserved(range = 0): string | undefined {
    return this.last.get(range);
  }
}
