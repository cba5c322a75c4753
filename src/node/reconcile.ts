// The reconcile loop behind `peers sync --watch` (as kindnet does it): sync when the source says the node
// list may have changed, and on a timer anyway, so an entry someone deleted by hand comes back. Syncs
// never overlap; triggers that arrive during one are folded into a single follow-up sync.
import type { Cluster } from './cluster.js';
import type { NodeSource } from './source.js';
import { type SyncReport, syncPeers } from './sync.js';

export interface LoopOptions {
  node: string;
  /** Seconds between syncs when nothing triggers one. */
  resync: number;
  signal: AbortSignal;
  /** Runs before each sync with the cluster it will use (the Kubernetes agent sets its own node up here). */
  prepare?(c: Cluster): Promise<void>;
  onSync(r: SyncReport): void;
  /** A sync that failed as a whole, after `ms`. */
  onError(e: Error, ms: number): void;
}

export async function peerLoop(source: NodeSource, o: LoopOptions): Promise<void> {
  let running = false;
  let again = false;
  const once = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        const started = performance.now();
        try {
          const c = await source.load();
          await o.prepare?.(c);
          o.onSync(await syncPeers(c, o.node));
        } catch (e) {
          o.onError(e as Error, performance.now() - started);
        }
      } while (again && !o.signal.aborted);
    } finally {
      running = false;
    }
  };
  const stop = source.watch(() => void once());
  const timer = setInterval(() => void once(), o.resync * 1000);
  await once();
  await new Promise<void>((resolve) => {
    if (o.signal.aborted) resolve();
    o.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  clearInterval(timer);
  stop();
}
