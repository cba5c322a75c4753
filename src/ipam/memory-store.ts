// An in-memory Store for testing the allocator as pure logic.
import type { Attachment } from '../cni/types.js';
import type { Store } from './store.js';

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
