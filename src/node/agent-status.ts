// What `podwire agent` tells an operator and kubelet, on a local HTTP port (--status-addr):
//   /healthz  the process is alive and its loop is not stuck: it reported progress (a sync, or a check of
//             what it is waiting for) within the last max(3 x resync, 60) s. kubelet restarts it otherwise.
//             It does not depend on the API server: the loop syncs from its cache while the server is away.
//   /readyz   the node is set up, its CNI config written, the last peer sync went through, and the agent
//             follows the API server (every list and watch it keeps is working); else 503 and why: what
//             it waits for (the API server, this node's podCIDR, ...), or since when it has been blind.
//             Only /healthz restarts the agent: a restart does not bring an API server back.
//   /metrics  Prometheus text (prom-client): syncs and their duration by outcome, peers per backend,
//             API watch restarts, whether the node is ready, and the process's own (memory, CPU, ...).
//             With --metrics-auth, only for a bearer token the API server allows (metrics-auth.ts).
//   /drops    every packet podwire drops, as it happens: one JSON line each (drops/drop.ts), after the
//             last `?recent=N` ones (at most 100 kept). Not on the metrics listener: what `podwire drops`
//             reads on the node.
// What /healthz and /readyz say is a summary, one line of at most 200 characters: they answer anyone who
// reaches the port (kubelet's probes carry no token), so no raw error text, no command, no file content;
// the agent's log has the whole story.
// Loaded by the agent only: prom-client and node:http never reach the per-pod path.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SyncReport } from './sync.js';
import { LEFT_OUT_REASONS, type LeftOut } from './cluster.js';
import type { Following } from './informer.js';
import type { Authorize } from './metrics-auth.js';
import { type Drop, dropLabels } from '../drops/drop.js';

/** How many recent drops /drops can replay. */
const RECENT_DROPS = 100;

/** How long an informer may be down before /readyz calls the agent blind. */
export const BLIND_AFTER_MS = 3000;

export class AgentStatus {
  readonly registry = new Registry();
  private readonly syncs = new Counter({
    name: 'podwire_syncs_total',
    help: 'peer syncs, by outcome',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  private readonly syncSeconds = new Histogram({
    name: 'podwire_sync_duration_seconds',
    help: 'duration of a peer sync (read, diff, apply), by outcome',
    labelNames: ['outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly peers = new Gauge({
    name: 'podwire_peers',
    help: 'other nodes, by the backend that reaches them',
    labelNames: ['backend'],
    registers: [this.registry],
  });
  private readonly failedEntries = new Gauge({
    name: 'podwire_sync_failed_entries',
    help: 'route, neighbour and FDB entries the last sync could not apply (retried by the next)',
    registers: [this.registry],
  });
  private readonly watchRestarts = new Counter({
    name: 'podwire_api_watch_restarts_total',
    help: 'restarts of the list/watch of Nodes after the API server failed or ended it',
    registers: [this.registry],
  });
  private readonly reclaimed = new Counter({
    name: 'podwire_reservations_reclaimed_total',
    help: 'stale reservations the plugin reclaimed when the slice was full (earlier boots, pods gone without DEL)',
    registers: [this.registry],
  });
  private reclaimedSeen = 0;
  private readonly ready = new Gauge({
    name: 'podwire_node_ready',
    help: '1 when this node is set up, its CNI config written and the last sync ok',
    registers: [this.registry],
  });
  private readonly leftOutNodes = new Gauge({
    name: 'podwire_nodes_left_out',
    help: 'Nodes from the API server whose values cannot be used (left out of every sync), by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  private readonly policies = new Gauge({
    name: 'podwire_network_policies',
    help: 'NetworkPolicies enforced on this node (compiled into table inet podwire-policy)',
    registers: [this.registry],
  });
  private readonly policyRules = new Gauge({
    name: 'podwire_network_policy_rules',
    help: "Rules in this node's NetworkPolicy table (they grow with policies, not with pods)",
    registers: [this.registry],
  });
  private readonly policySyncSeconds = new Histogram({
    name: 'podwire_network_policy_sync_seconds',
    help: 'Time from a NetworkPolicy, Pod or Namespace change being seen to the kernel having it, by how it was written',
    labelNames: ['applied'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  /** What each informer says of its API server: read live by /readyz and the metrics. */
  private readonly followed = new Map<string, () => Following>();
  private readonly apiUp = new Gauge({
    name: 'podwire_api_up',
    help: '1 while the agent follows the API server for this resource (its last list or watch succeeded)',
    labelNames: ['resource'],
    registers: [this.registry],
    collect: () => {
      for (const [resource, f] of this.followed) this.apiUp.set({ resource }, f().up ? 1 : 0);
    },
  });
  private readonly apiContactAge = new Gauge({
    name: 'podwire_api_last_contact_age_seconds',
    help: 'seconds since the last successful list, watch start or watch event, by resource (-1: none yet)',
    labelNames: ['resource'],
    registers: [this.registry],
    collect: () => {
      for (const [resource, f] of this.followed) {
        const last = f().lastContact;
        this.apiContactAge.set({ resource }, last ? (Date.now() - last) / 1000 : -1);
      }
    },
  });
  private readonly listsHeld = new Counter({
    name: 'podwire_api_lists_held_total',
    help: 'lists from the API server held back (most objects gone at once, no DELETE events) or refused (without this node), by outcome',
    labelNames: ['resource', 'outcome'],
    registers: [this.registry],
  });
  private readonly unreadable = new Gauge({
    name: 'podwire_network_policies_unreadable',
    help: 'NetworkPolicies podwire cannot read, by the field at fault: the pods each was meant for are isolated until it is fixed',
    labelNames: ['namespace', 'policy', 'field'],
    registers: [this.registry],
  });
  private readonly dropped = new Counter({
    name: 'podwire_dropped_packets_total',
    help: "Packets podwire's own rules dropped that were logged (at most 10 a second per rule): by reason (a spoofing check, vxlan, ingress, egress, held), the pod's namespace and the isolating policies",
    labelNames: ['reason', 'namespace', 'policy'],
    registers: [this.registry],
  });
  private readonly recentDrops: Drop[] = [];
  private readonly dropReaders = new Set<ServerResponse>();
  private policyFailure?: string;
  private beat = Date.now();
  private waitingFor = 'the API server (listing nodes)';
  private nodeUp = false;
  private lastSync: { ok: boolean; error?: string } | undefined;

  constructor(private readonly stuckAfterMs: number) {
    collectDefaultMetrics({ register: this.registry });
    this.ready.set(0);
    for (const backend of ['host-gw', 'vxlan']) this.peers.set({ backend }, 0);
    this.leftOut([]);
  }

  /** The Nodes left out now (this node stays ready: they are other nodes' problem). */
  leftOut(nodes: readonly LeftOut[]): void {
    for (const reason of LEFT_OUT_REASONS) this.leftOutNodes.set({ reason }, nodes.filter((n) => n.reason === reason).length);
  }

  /** A packet podwire dropped: counted, kept among the recent ones, and sent to every /drops reader. */
  drop(d: Drop): void {
    this.dropped.inc(dropLabels(d));
    this.recentDrops.push(d);
    if (this.recentDrops.length > RECENT_DROPS) this.recentDrops.shift();
    const line = JSON.stringify(d) + '\n';
    for (const r of this.dropReaders) r.write(line);
  }

  /** The loop is alive (it checked what it waits for, or finished a sync). */
  heartbeat(): void {
    this.beat = Date.now();
  }

  /** What the agent waits for, in words; undefined once it waits for nothing but the next event. */
  waiting(what: string | undefined): void {
    this.heartbeat();
    this.waitingFor = what ?? '';
    this.update();
  }

  /** The node is set up and its CNI config is written. */
  nodeIsUp(): void {
    this.nodeUp = true;
    this.update();
  }

  /** The store's count of reclaims (the plugin records them; the agent only reads): counted from here on. */
  reclaims(count: number): void {
    if (count > this.reclaimedSeen) this.reclaimed.inc(count - this.reclaimedSeen);
    this.reclaimedSeen = Math.max(this.reclaimedSeen, count);
  }

  /** A NetworkPolicy sync: how many policies and rules, and how long it took. */
  policySynced(r: {
    applied: string;
    ms: number;
    compiled?: { rules: number; policies: unknown[] };
    leftOut?: readonly { kind: string; name: string; why: string }[];
  }): void {
    this.policies.set(r.compiled?.policies.length ?? 0);
    this.policyRules.set(r.compiled?.rules ?? 0);
    this.policySyncSeconds.observe({ applied: r.applied }, r.ms / 1000);
    this.policyFailure = undefined;
    // Each policy that cannot be read, by the field at fault: its pods are isolated meanwhile (enforce.ts).
    this.unreadable.reset();
    for (const l of r.leftOut ?? []) {
      if (l.kind !== 'NetworkPolicy') continue;
      const [namespace = '', policy = ''] = l.name.split('/').map((x) => x.replace(/^"|"$/g, ''));
      this.unreadable.set({ namespace, policy, field: l.why.split(' ')[0] ?? '' }, 1);
    }
    this.update();
  }

  /** The NetworkPolicy table could not be written: the kernel keeps the last good one, and the node is not ready. */
  policyFailed(e: Error): void {
    this.policyFailure = summary(e.message);
    this.update();
  }

  /** An informer whose standing with the API server /readyz and the metrics report. */
  follow(resource: string, following: () => Following): void {
    this.followed.set(resource, following);
  }

  /** A list held back, refused, or confirmed by a second list. */
  listHeld(resource: string, outcome: 'held' | 'refused' | 'confirmed'): void {
    this.listsHeld.inc({ resource, outcome });
  }

  /**
   * The resources the agent does not follow now, in words: since when, for how long, and the cause. The
   * data path does not depend on it (what is in the kernel stays), but what changes meanwhile is not seen.
   */
  blind(now = Date.now()): string | undefined {
    // A watch cut and resumed within a few seconds (an API server's rolling restart, a load balancer's
    // idle timeout) is not blindness: readiness would flap on every one. Not listed yet counts at once.
    const down = [...this.followed]
      .map(([resource, f]) => ({ resource, ...f() }))
      .filter((f) => !f.up && (!f.listed || now - f.since >= BLIND_AFTER_MS))
      .sort((a, b) => a.since - b.since);
    if (!down.length) return undefined;
    const first = down[0]!;
    const what = down.map((f) => `${f.resource}: ${f.cause ?? (f.listed ? 'watch ended' : 'not listed yet')}`).join('; ');
    return `not following the API server since ${new Date(first.since).toISOString()} (${Math.round((now - first.since) / 1000)} s): ${what}`;
  }

  watchRestarted(): void {
    this.watchRestarts.inc();
  }

  synced(r: SyncReport): void {
    const outcome = r.failures.length ? 'failed' : 'ok';
    this.syncs.inc({ outcome });
    this.syncSeconds.observe({ outcome }, r.ms / 1000);
    for (const backend of ['host-gw', 'vxlan'] as const) this.peers.set({ backend }, r.peers.filter((p) => p.mode === backend).length);
    this.failedEntries.set(r.failures.length);
    // Counted, not quoted: the failed commands and ip's words are in the agent's log.
    this.lastSync = r.failures.length
      ? { ok: false, error: `${r.failures.length} route/neighbour/FDB entries failed (see the agent's log)` }
      : { ok: true };
    this.heartbeat();
    this.update();
  }

  syncFailed(e: Error, ms: number): void {
    this.syncs.inc({ outcome: 'failed' });
    this.syncSeconds.observe({ outcome: 'failed' }, ms / 1000);
    this.lastSync = { ok: false, error: summary(e.message) };
    this.heartbeat();
    this.update();
  }

  /** Why the node is not ready, or undefined when it is. */
  notReady(now = Date.now()): string | undefined {
    if (this.waitingFor) return `waiting for ${this.waitingFor}`;
    const blind = this.blind(now);
    if (blind) return blind;
    if (this.policyFailure) return `network policy not written (the last good table stays in the kernel): ${this.policyFailure}`;
    if (!this.nodeUp) return 'node not set up yet';
    if (!this.lastSync) return 'no peer sync yet';
    if (!this.lastSync.ok) return `last peer sync failed: ${this.lastSync.error}`;
    return undefined;
  }

  stuck(): string | undefined {
    const quiet = Date.now() - this.beat;
    return quiet > this.stuckAfterMs ? `no progress for ${Math.round(quiet / 1000)} s (the loop may be stuck)` : undefined;
  }

  private update(): void {
    this.ready.set(this.notReady() ? 0 : 1);
  }

  /**
   * Answers /healthz, /readyz and /metrics — or, on a metrics listener (--metrics-addr), /metrics only,
   * to whom `authorize` allows (unset: to whoever reaches the port).
   */
  async handle(req: IncomingMessage, res: ServerResponse, o: ServeOptions = {}): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const text = (code: number, body: string) => {
      res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(summary(body) + '\n');
    };
    if (o.metricsOnly && path !== '/metrics') return text(404, 'not found: /metrics');
    if (path === '/healthz' || path === '/livez') {
      const stuck = this.stuck();
      return text(stuck ? 503 : 200, stuck ?? 'ok');
    }
    if (path === '/readyz') {
      const why = this.notReady();
      return text(why ? 503 : 200, why ?? 'ok');
    }
    if (path === '/metrics') {
      const access = o.authorize ? await o.authorize(req.headers.authorization) : 200;
      if (access !== 200) {
        const why = { 401: 'a bearer token is needed', 403: 'this token may not get /metrics', 503: 'cannot ask the API server now' }[
          access
        ];
        if (access === 401) res.setHeader('WWW-Authenticate', 'Bearer');
        return text(access, why);
      }
      res.writeHead(200, { 'Content-Type': this.registry.contentType });
      res.end(await this.registry.metrics());
      return;
    }
    if (path === '/drops') {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store' });
      res.flushHeaders();
      const n = Math.min(Math.max(Number(url.searchParams.get('recent')) || 0, 0), RECENT_DROPS);
      for (const d of n ? this.recentDrops.slice(-n) : []) res.write(JSON.stringify(d) + '\n');
      this.dropReaders.add(res);
      req.on('close', () => this.dropReaders.delete(res));
      return;
    }
    text(404, 'not found: /healthz, /readyz, /metrics, /drops');
  }
}

/** One line of at most 200 characters: what /healthz and /readyz may say to whoever asks. */
export function summary(s: string): string {
  const line = s.split('\n')[0]!.trim();
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}

export interface ServeOptions {
  /** Only /metrics (the listener Prometheus reaches). */
  metricsOnly?: boolean;
  /** Who may read /metrics there (metrics-auth.ts); unset: whoever reaches the port. */
  authorize?: Authorize;
}

/** Serves the status on host:port; resolves once listening (the port, when 0 was asked for). */
export function serveStatus(
  status: AgentStatus,
  host: string,
  port: number,
  o: ServeOptions = {},
): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => void status.handle(req, res, o).catch(() => res.destroy()));
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolve({ server, port: typeof addr === 'object' && addr ? addr.port : port });
    });
  });
}
