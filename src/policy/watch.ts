// The agent's NetworkPolicy loop: informers on NetworkPolicies, Pods and Namespaces (list/watch, as the
// DaemonSet's RBAC grants; informer.ts: paged lists, retries that never leave it blind for long, a list
// that would drop most objects at once held back until another confirms it), every change folded into one
// sync shortly after (a burst of events, one sync), each sync handing the informers' caches to the
// enforcer (enforce.ts). Meanwhile, and whenever the API server fails, the table in the kernel stays as
// it was.
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiClient } from '../node/api.js';
import { type FollowApi, Informer, type KubeObject, dropManagedFields } from '../node/informer.js';
import { PolicyEnforcer, type SyncResult, writePolicyReport } from './enforce.js';

export interface PolicyWatchOptions {
  kc: KubeConfig;
  node: string;
  say: (m: string) => void;
  onSync?: (r: SyncResult) => void;
  onError?: (e: Error) => void;
  /** A sync that could not write the table (the kernel keeps the last good one; it is tried again). */
  onSyncFailed?: (e: Error) => void;
  /** An object left out for the first time (or for a new reason): the agent posts an Event for a policy. */
  onLeftOut?: (l: SyncResult['leftOut'][number]) => void;
  /** Events within this many ms are one sync. */
  debounceMs?: number;
  /** The node's subnet file: the report for status and doctor goes beside it. */
  subnetFile?: string;
  /** The agent's hooks on each informer (readiness, metrics, retries, relists). */
  follow?: FollowApi;
}

/** The collections the policies are computed from, in the order the enforcer takes them. */
const SOURCES = [
  ['networkpolicies', '/apis/networking.k8s.io/v1/networkpolicies'],
  ['pods', '/api/v1/pods'],
  ['namespaces', '/api/v1/namespaces'],
] as const;

/**
 * A Pod as the policies need it — and no more, kept for every pod of the cluster: its name, namespace and
 * labels, its node, hostNetwork, its containers' named ports and its addresses. Not its spec's volumes,
 * env, images, probes, status conditions or managedFields (most of a Pod's bytes).
 */
export function slimPod(o: KubeObject): KubeObject {
  const p = o as {
    metadata?: { name?: unknown; namespace?: unknown; labels?: unknown; resourceVersion?: unknown; uid?: unknown };
    spec?: { nodeName?: unknown; hostNetwork?: unknown; containers?: { ports?: unknown }[] };
    status?: { podIP?: unknown; podIPs?: unknown };
  };
  const m = p.metadata ?? {};
  return {
    metadata: { name: m.name, namespace: m.namespace, labels: m.labels, resourceVersion: m.resourceVersion, uid: m.uid },
    spec: {
      nodeName: p.spec?.nodeName,
      hostNetwork: p.spec?.hostNetwork,
      containers: Array.isArray(p.spec?.containers) ? p.spec.containers.map((c) => ({ ports: c?.ports })) : [],
    },
    status: { podIP: p.status?.podIP, podIPs: p.status?.podIPs },
  } as KubeObject;
}

export class PolicyWatch {
  private readonly enforcer: PolicyEnforcer;
  private readonly informers: Informer<KubeObject>[] = [];
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  private told = new Set<string>();

  constructor(private readonly o: PolicyWatchOptions) {
    this.enforcer = new PolicyEnforcer(o.node);
  }

  async start(): Promise<void> {
    const api = new ApiClient(this.o.kc);
    for (const [resource, path] of SOURCES) {
      const inf: Informer<KubeObject> = new Informer<KubeObject>(api, {
        path,
        resource,
        transform: resource === 'pods' ? slimPod : dropManagedFields,
        onChange: () => this.schedule(),
        onError: (e) => this.o.onError?.(new Error(`${resource}: ${e.message}`)),
        ...this.o.follow?.(resource, () => inf.following()),
      });
      this.informers.push(inf);
      inf.start();
    }
    await Promise.all(this.informers.map((i) => i.listed));
    if (this.stopped) return;
    this.schedule(0);
  }

  private schedule(ms = this.o.debounceMs ?? 20): void {
    // Nothing is enforced from a partial picture: every source must have listed once.
    if (this.stopped || !this.informers.every((i) => i.hasListed())) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.running.then(() => this.syncNow());
    }, ms);
  }

  private async syncNow(): Promise<void> {
    const [policies, pods, namespaces] = this.informers.map((i) => i.list());
    try {
      const r = await this.enforcer.sync({ policies: policies!, pods: pods!, namespaces: namespaces! });
      // Said once per object and reason, not on every sync.
      const now = new Set<string>();
      for (const l of r.leftOut) {
        const key = `${l.kind} ${l.name} ${l.why}`;
        now.add(key);
        if (this.told.has(key)) continue;
        this.o.say(
          `network policy: left out ${l.kind} ${l.name}: ${l.why}${l.isolating ? ' (the pods it selects are isolated until it is fixed)' : ''}`,
        );
        if (l.kind === 'NetworkPolicy') this.o.onLeftOut?.(l);
      }
      this.told = now;
      if (this.o.subnetFile) writePolicyReport(this.o.subnetFile, r);
      this.o.onSync?.(r);
      // Bun's collector lets a burst's garbage (a watch of thousands of pods, a compile over all of them)
      // pile up past the container's memory limit; collected here, once the kernel has the sync:
      // measured with 20 000 pods, peak 238 MiB instead of 250-276, 144 MiB after instead of 175-192.
      (globalThis as { Bun?: { gc(sync: boolean): void } }).Bun?.gc(true);
    } catch (e) {
      this.o.onError?.(e as Error);
      this.o.onSyncFailed?.(e as Error);
      this.schedule(1000); // the next attempt writes the table whole
    }
  }

  /** Stops watching; the table stays in the kernel (enforcement keeps going until the next agent writes its own). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.running;
  }

  /** The pod ("namespace/name") at an address, as of the last sync. */
  podAt(ip: string): string | undefined {
    const p = this.enforcer.podAt(ip);
    return p && `${p.namespace}/${p.name}`;
  }

  /** The policies that isolate the pod at this address in a direction. */
  isolating(ip: string, dir: 'ingress' | 'egress'): string[] {
    return this.enforcer.isolating(ip, dir);
  }

  /** --network-policy=false: remove the table. */
  off(): Promise<boolean> {
    return this.enforcer.off();
  }
}
