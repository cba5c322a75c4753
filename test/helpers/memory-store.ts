// An in-memory Store for testing the allocator as pure logic (as host-local tests its allocator with a
// fake store); the disk store is tested on disk (test/unit/disk-store.test.ts).
import type { Attachment } from '../../src/cni/types.js';
import type { Store } from '../../src/ipam/store.js';
import type { Family } from '../../src/net/ip.js';

export class MemoryStore implements Store {
  readonly ips = new Map<string, Attachment>();
  last: string | undefined;
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

  reserve(ip: string, owner: Attachment): boolean {
    if (this.ips.has(ip)) return false;
    this.ips.set(ip, owner);
    this.last = ip;
    return true;
  }

  release(ip: string): void {
    this.ips.delete(ip);
  }

  lastReserved(): string | undefined {
    return this.last;
  }
}
