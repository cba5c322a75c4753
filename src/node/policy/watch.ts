// The agent's NetworkPolicy loop: informers on NetworkPolicies, Pods and Namespaces (list/watch, as the
// DaemonSet's RBAC grants), every change folded into one sync shortly after (a burst of events, one
// sync), each sync handing the informers' caches to the enforcer (enforce.ts). A watch that fails is
// started again with backoff, as the nodes' is; meanwhile the table in the kernel stays as it was.
import type { KubeConfig } from '@kubernetes/client-node';
import { PolicyEnforcer, type SyncResult, writePolicyReport } from './enforce.js';

export interface PolicyWatchOptions {
  kc: KubeConfig;
  node: string;
  say: (m: string) => void;
  onSync?: (r: SyncResult) => void;
  onError?: (e: Error) => void;
  /** Events within this many ms are one sync. */
  debounceMs?: number;
  /** The node's subnet file: the report for status and doctor goes beside it. */
  subnetFile?: string;
}

type Cache = { list(): unknown[]; start(): Promise<void>; stop(): Promise<void> | void; on(ev: string, f: (x?: unknown) => void): void };

export class PolicyWatch {
  private readonly enforcer: PolicyEnforcer;
  private readonly informers: Cache[] = [];
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  private listed = 0;
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopped$!: () => void;
  private readonly stopping = new Promise<void>((r) => (this.stopped$ = r));

  constructor(private readonly o: PolicyWatchOptions) {
    this.enforcer = new PolicyEnforcer(o.node);
  }

  async start(): Promise<void> {
    const k8s = await import('@kubernetes/client-node');
    const core = this.o.kc.makeApiClient(k8s.CoreV1Api);
    const net = this.o.kc.makeApiClient(k8s.NetworkingV1Api);
    const sources: [string, () => Promise<unknown>][] = [
      ['/apis/networking.k8s.io/v1/networkpolicies', () => net.listNetworkPolicyForAllNamespaces()],
      ['/api/v1/pods', () => core.listPodForAllNamespaces()],
      ['/api/v1/namespaces', () => core.listNamespace()],
    ];
    let ready!: () => void;
    const allListed = new Promise<void>((r) => (ready = r));
    for (const [path, list] of sources) {
      let first = true;
      const inf = k8s.makeInformer(this.o.kc, path, async () => {
        const l = await list();
        if (first && ++this.listed === sources.length) ready();
        first = false;
        return l as never;
      }) as unknown as Cache;
      const changed = () => this.schedule();
      inf.on('add', changed);
      inf.on('update', changed);
      inf.on('delete', changed);
      let pause = 500;
      inf.on('error', (e) => {
        this.o.onError?.(e instanceof Error ? e : new Error(String(e)));
        if (this.stopped) return;
        // Kept, so stop() can clear it: a pending retry must not keep a stopping agent alive.
        const retry = setTimeout(
          () => {
            this.retries.delete(retry);
            if (!this.stopped) void inf.start().then(changed);
          },
          (pause = Math.min(pause * 2, 30_000)),
        );
        this.retries.add(retry);
      });
      if (this.stopped) return; // stopped while an earlier informer listed
      this.informers.push(inf);
      await inf.start();
    }
    await Promise.race([allListed, this.stopping]);
    if (this.stopped) return;
    await new Promise((r) => setImmediate(r));
    this.schedule(0);
  }

  private schedule(ms = this.o.debounceMs ?? 20): void {
    if (this.stopped || this.listed < 3) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.running.then(() => this.syncNow());
    }, ms);
  }

  private async syncNow(): Promise<void> {
    const [policies, pods, namespaces] = this.informers.map((i) => i.list());
    try {
      const r = await this.enforcer.sync({ policies: policies!, pods: pods!, namespaces: namespaces! });
      for (const l of r.leftOut) this.o.say(`network policy: left out ${l.kind} ${l.name}: ${l.why}`);
      if (this.o.subnetFile) writePolicyReport(this.o.subnetFile, r);
      this.o.onSync?.(r);
    } catch (e) {
      this.o.onError?.(e as Error);
      this.schedule(1000); // the next attempt writes the table whole
    }
  }

  /** Stops watching; the table stays in the kernel (enforcement keeps going until the next agent writes its own). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopped$();
    clearTimeout(this.timer);
    for (const r of this.retries) clearTimeout(r);
    this.retries.clear();
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.running;
  }

  /** --network-policy=false: remove the table. */
  off(): Promise<boolean> {
    return this.enforcer.off();
  }
}
