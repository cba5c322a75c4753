// The agent's eye on every packet podwire drops (drops/): the log group read with ulogd2, each drop
// explained — the pod its port names (the bindings, read again when a port is new), the pods and
// policies its addresses name (the NetworkPolicy informers' last sync) — then logged as one line,
// counted in podwire_dropped_packets_total and sent to /drops readers (`podwire drops`).
import { GUARD_LOG_GROUP, GUARD_PREFIX, type Binding, listBindings, portOfId } from '../guard/table.js';
import { type DropReader, readDrops } from '../drops/ulogd.js';
import { type Drop, type Lookups, dropText, explainDrop } from '../drops/drop.js';
import { log } from '../runtime/log.js';

export interface DropWatchOptions {
  say(m: string): void;
  /** Every explained drop (the agent's status: metric and /drops). */
  onDrop(d: Drop): void;
  /** Pods and policies by address, when the agent follows them. */
  pod?(ip: string): string | undefined;
  policies?(ip: string, dir: 'ingress' | 'egress'): string[];
}

/** The bindings, read again at most every half second, and only when a drop names a port not in them. */
class Bindings {
  private by = new Map<string, Binding>();
  private readAt = 0;
  private reading?: Promise<void>;

  async get(port: string): Promise<Binding | undefined> {
    if (!this.by.has(port) && Date.now() - this.readAt > 500) {
      this.reading ??= listBindings()
        .then((bs) => {
          this.by = new Map(bs.map((b) => [b.port, b]));
        })
        .catch(() => undefined)
        .finally(() => {
          this.readAt = Date.now();
          this.reading = undefined;
        });
      await this.reading;
    }
    return this.by.get(port);
  }
}

/** Starts reading drops; undefined (said once) when this node cannot. */
export function watchDrops(o: DropWatchOptions): DropReader | undefined {
  const bindings = new Bindings();
  // Explained one after another, so they keep their order even when one waits for the bindings.
  let chain = Promise.resolve();
  const r = readDrops(GUARD_LOG_GROUP, (raw) => {
    chain = chain.then(async () => {
      const port = raw.prefix.startsWith(GUARD_PREFIX) ? portOfId(raw.mark) : undefined;
      const b = port ? await bindings.get(port) : undefined;
      const look: Lookups = {
        binding: (p) => (p === port ? b : undefined),
        ...(o.pod ? { pod: o.pod } : {}),
        ...(o.policies ? { policies: o.policies } : {}),
      };
      const d = explainDrop(raw, look);
      if (!d) return;
      log.warn({ drop: d }, dropText(d));
      o.onDrop(d);
    });
  });
  if ('missing' in r) {
    o.say(`drops not read: ${r.missing}`);
    return undefined;
  }
  void r.ended.then((why) => why && o.say(`drops no longer read: ${why}`));
  return r;
}
