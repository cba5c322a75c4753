// An informer: one kind of object listed and then watched, kept in a cache the agent reads, as client-go's
// reflector does it — and built so that a failing API server never leaves the agent blind for long and
// never makes it tear down what works:
//   - lists are paginated (`limit`, following `continue`; an expired token starts the list again);
//   - a watch resumes from the last resourceVersion it saw; 410 Gone (compacted history) relists;
//   - every failure is retried after a jittered pause that doubles up to a few seconds and starts again
//     from the shortest once a list or watch succeeds; a Retry-After the server sends is honoured;
//   - a fresh list that would remove most of the cache at once, without the DELETE events that real
//     removals come with, is held back and confirmed by another list after a short wait before anything
//     downstream sees it; a caller may refuse a list outright (the Nodes' one without this node);
//   - the whole list is read again on a period, so a missed event is repaired without any object changing.
// What it reports (up or not, since when, why; what it held back) feeds /readyz, the metrics and status.
import { ApiError, type ApiClient } from './api.js';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

interface ListPage<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

/** Pauses between retries: doubling from `minMs` up to `maxMs`, each drawn from [half, whole] (jitter). */
export class Backoff {
  private n = 0;
  constructor(
    readonly minMs = 250,
    readonly maxMs = 4000,
    private readonly random: () => number = Math.random,
  ) {}

  /** The next pause: at least the server's Retry-After (up to a minute), else the jittered doubling. */
  next(retryAfterMs?: number): number {
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** this.n);
    this.n = Math.min(this.n + 1, 30);
    const pause = ceiling * (0.5 + this.random() / 2);
    return retryAfterMs === undefined ? pause : Math.max(pause, Math.min(retryAfterMs, 60_000));
  }

  /** A list or watch succeeded: the next failure starts from the shortest pause again. */
  reset(): void {
    this.n = 0;
  }
}

/** How an informer stands with the API server. */
export interface Following {
  /** Its last list or watch succeeded (and it has listed at least once). */
  up: boolean;
  /** When `up` last changed (ms since the epoch). */
  since: number;
  /** Why not up: the last failure, summarised. */
  cause?: string;
  /** The last successful list, watch start or watch event (ms since the epoch); 0 before any. */
  lastContact: number;
  listed: boolean;
}

export interface InformerOptions<T extends KubeObject> {
  /** The collection: '/api/v1/nodes'. */
  path: string;
  /** Its name in messages and metrics: 'nodes'. */
  resource: string;
  /** Objects per list page (client-go's reflector asks for 500). */
  pageSize?: number;
  backoff?: Backoff;
  /** A full list again every this many ms (0: never). */
  relistMs?: number;
  /** How long to wait before the list that confirms a held-back one. */
  confirmMs?: number;
  /** A reason to refuse this list outright (it is not the cluster): kept out, retried later. */
  refuse?(items: readonly T[], cached: readonly T[]): string | undefined;
  /** Kept in the cache instead of the object (drop what nobody reads: managedFields...). */
  transform?(o: T): T;
  /** Something in the cache changed (add, update, delete, or a list that differs). */
  onChange(): void;
  onError?(e: ApiError): void;
  /** After each list that went into the cache. */
  onListed?(count: number): void;
  /** A list was held back or refused, with the reason; `confirmed` when the confirming list agreed and it went in. */
  onHeld?(reason: string, outcome: 'held' | 'refused' | 'confirmed'): void;
  /** The watch was started again (the server ended it, 410 Gone, or a failure). */
  onRestart?(): void;
  /** `up` changed, or the cause of being down did. */
  onFollowing?(f: Following): void;
  /** Watch request parameters; tests shorten them. */
  watchTimeoutS?: () => number;
}

/** managedFields (often most of an object's bytes) are read by nobody here: not kept in the cache. */
export function dropManagedFields<T extends KubeObject>(o: T): T {
  const m = o.metadata as { managedFields?: unknown } | undefined;
  if (!m?.managedFields) return o;
  const { managedFields: _, ...metadata } = m;
  return { ...o, metadata };
}

/** What the agent hooks onto each of its informers (its operator's views of the API server), per resource. */
export type FollowApi = (
  resource: string,
  following: () => Following | undefined,
) => Pick<InformerOptions<KubeObject>, 'relistMs' | 'backoff' | 'confirmMs' | 'onFollowing' | 'onHeld'>;

const keyOf = (o: KubeObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private rv = '';
  private readonly stopper = new AbortController();
  private readonly backoff: Backoff;
  private loop?: Promise<void>;
  private watchAbort?: AbortController;
  private relistDue = false;
  private relistTimer?: NodeJS.Timeout;
  private listedOnce = false;
  private firstList!: () => void;
  readonly listed: Promise<void> = new Promise((r) => (this.firstList = r));
  private state: Following = { up: false, since: Date.now(), lastContact: 0, listed: false };

  constructor(
    private readonly api: ApiClient,
    private readonly o: InformerOptions<T>,
  ) {
    this.backoff = o.backoff ?? new Backoff();
  }

  /** Starts listing and watching in the background; `listed` resolves after the first list is in the cache. */
  start(): void {
    this.loop ??= this.run();
    if (this.o.relistMs) {
      this.relistTimer = setInterval(() => {
        this.relistDue = true;
        this.watchAbort?.abort(); // ends the watch; the loop lists, then watches from the new list
      }, this.o.relistMs);
      this.relistTimer.unref?.();
    }
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    clearInterval(this.relistTimer);
    this.firstList(); // a caller still waiting for the first list goes on (and sees it stopped)
    await this.loop;
  }

  get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get(name: string, namespace = ''): T | undefined {
    return this.cache.get(`${namespace}/${name}`);
  }

  following(): Following {
    return { ...this.state };
  }

  hasListed(): boolean {
    return this.listedOnce;
  }

  private setUp(up: boolean, cause?: string): void {
    const now = Date.now();
    if (up) this.state.lastContact = now;
    const was = this.state.up;
    const wasCause = this.state.cause;
    this.state = {
      ...this.state,
      up,
      listed: this.listedOnce,
      ...(up !== was ? { since: now } : {}),
      ...(up ? { cause: undefined } : { cause: cause ?? this.state.cause }),
    };
    if (up !== was || this.state.cause !== wasCause) this.o.onFollowing?.(this.following());
  }

  private async run(): Promise<void> {
    const signal = this.stopper.signal;
    let watches = 0;
    while (!signal.aborted) {
      try {
        if (!this.rv || this.relistDue) await this.relist();
        if (signal.aborted) break;
        if (watches++) this.o.onRestart?.();
        await this.watchOnce();
      } catch (e) {
        if (signal.aborted) break;
        const err = e instanceof ApiError ? e : new ApiError((e as Error).message);
        if (err.expired) this.rv = ''; // 410: the next round lists afresh, at once
        if (err.reason === 'podwire:held') {
          await sleep(this.o.confirmMs ?? 2000, signal);
          continue;
        }
        this.setUp(false, err.cause);
        this.o.onError?.(err);
        if (err.expired) continue;
        await sleep(this.backoff.next(err.retryAfterMs), signal);
      }
    }
  }

  /** Every page of the collection; an expired `continue` starts it over once from the first page. */
  private async listAll(): Promise<{ items: T[]; rv: string }> {
    for (let attempt = 0; ; attempt++) {
      const items: T[] = [];
      let cont: string | undefined;
      let rv = '';
      try {
        do {
          const page = await this.api.get<ListPage<T>>({
            path: this.o.path,
            query: { limit: this.o.pageSize ?? 500, continue: cont },
            timeoutMs: 60_000,
            signal: this.stopper.signal,
          });
          if (!Array.isArray(page.items)) throw new ApiError('a list without items', 200);
          items.push(...page.items);
          rv = page.metadata?.resourceVersion ?? '';
          cont = page.metadata?.continue || undefined;
        } while (cont);
      } catch (e) {
        if (e instanceof ApiError && e.expired && cont !== undefined && attempt === 0) continue;
        throw e;
      }
      return { items, rv };
    }
  }

  /** The pending confirmation of a held-back list: the keys it would have removed. */
  private held?: { removing: string; since: number };

  private async relist(): Promise<void> {
    const { items: raw, rv } = await this.listAll();
    const items = this.o.transform ? raw.map((x) => this.o.transform!(x)) : raw;
    this.state.lastContact = Date.now();
    const refused = this.o.refuse?.(items, this.list());
    if (refused) {
      this.o.onHeld?.(refused, 'refused');
      throw new ApiError(`a list refused: ${refused}`);
    }
    const fresh = new Map(items.map((o) => [keyOf(o), o]));
    const removed = [...this.cache.keys()].filter((k) => !fresh.has(k));
    // Most of the cache gone at once, with no DELETE events: a stale or broken server, or real? Another
    // list a moment later tells. Until it agrees, downstream keeps what it has.
    if (removed.length * 2 > this.cache.size && removed.length > 0) {
      const removing = removed.sort().join('\n');
      if (this.held?.removing !== removing) {
        this.held = { removing, since: Date.now() };
        const why = `a list of ${this.o.resource} without ${removed.length} of the ${this.cache.size} known, and no DELETE events`;
        this.o.onHeld?.(why, 'held');
        throw new ApiError(why, 200, undefined, 'podwire:held');
      }
      this.o.onHeld?.(`${removed.length} of ${this.cache.size} ${this.o.resource} removed, as a second list confirmed`, 'confirmed');
    }
    this.held = undefined;
    for (const k of removed) this.cache.delete(k);
    for (const [k, o] of fresh) this.cache.set(k, o);
    this.rv = rv;
    this.relistDue = false;
    this.listedOnce = true;
    this.backoff.reset();
    this.setUp(true);
    this.o.onListed?.(this.cache.size);
    this.firstList();
    // Downstream reconciles after every list, even one that changed nothing here: that is how a periodic
    // relist repairs what a missed event or a hand-made change left wrong.
    this.o.onChange();
  }

  private async watchOnce(): Promise<void> {
    // One controller per watch, aborted by a relist or by stop(). Not AbortSignal.any: each call leaves a
    // listener on the long-lived stop signal, and a watch restarted for days would pile them up.
    const abort = new AbortController();
    this.watchAbort = abort;
    const stop = () => abort.abort();
    this.stopper.signal.addEventListener('abort', stop, { once: true });
    const both = abort.signal;
    const started = Date.now();
    let events = 0;
    const timeoutS = this.o.watchTimeoutS?.() ?? 300 + Math.floor(Math.random() * 300);
    try {
      await this.api.watch(
        {
          path: this.o.path,
          query: { watch: true, resourceVersion: this.rv, allowWatchBookmarks: true, timeoutSeconds: timeoutS },
          timeoutMs: 30_000,
          idleMs: (timeoutS + 30) * 1000,
          signal: both,
        },
        (type, object) => {
          events++;
          this.event(type, object as T);
        },
        () => {
          // Connected: the server answers again, and the next failure starts from the shortest pause.
          this.backoff.reset();
          this.setUp(true);
        },
      );
    } catch (e) {
      if (abort.signal.aborted && !this.stopper.signal.aborted) return; // ended for a periodic relist
      throw e;
    } finally {
      this.watchAbort = undefined;
      this.stopper.signal.removeEventListener('abort', stop);
    }
    // A watch the server ends at once, with nothing in it, over and over, must not spin: treat as a failure.
    if (events === 0 && Date.now() - started < 1000 && !abort.signal.aborted) throw new ApiError('the watch ended at once');
  }

  private event(type: string, o: T): void {
    if (type === 'ERROR') {
      const s = o as { code?: unknown; reason?: unknown; message?: unknown };
      const expired = s.code === 410 || s.reason === 'Expired' || s.reason === 'Gone';
      throw new ApiError(
        `watch error ${typeof s.code === 'number' ? s.code : ''} ${typeof s.reason === 'string' ? s.reason : ''}`.trim(),
        typeof s.code === 'number' ? s.code : undefined,
        undefined,
        expired ? 'Expired' : undefined,
      );
    }
    const rv = o?.metadata?.resourceVersion;
    if (rv) this.rv = rv;
    // The watch is working: the next failure starts from the shortest pause again.
    this.backoff.reset();
    this.setUp(true);
    if (type === 'BOOKMARK') return;
    const k = keyOf(o);
    if (type === 'DELETED') {
      if (this.cache.delete(k)) this.o.onChange();
      return;
    }
    if (type !== 'ADDED' && type !== 'MODIFIED') return;
    this.cache.set(k, this.o.transform ? this.o.transform(o) : o);
    this.o.onChange();
  }
}
