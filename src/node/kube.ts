// Kubernetes as the node-list source: every Node's spec.podCIDRs (given by kube-controller-manager when the
// cluster was made with --pod-network-cidr) and its InternalIP, kept current by list + watch. The same
// Cluster as a cluster file comes out, so `podwire agent` reconciles through the same code as
// `podwire peers sync`.
//
// The informer (@kubernetes/client-node) re-watches when the server ends a watch and re-lists after
// "410 Gone" (its resourceVersion was compacted away); any other failure (API server restarting,
// connection refused) stops it, and we start it again after a short, growing pause.
import type { KubeConfig, V1Node } from '@kubernetes/client-node';
import { type Backend, type Cluster, ClusterError, type Family, familyName, parseCluster } from './cluster.js';
import type { NodeSource } from './source.js';

/** Annotations podwire publishes on its Node (status patch) and reads from the others. */
export const ANNOTATION = {
  vtepMac: 'podwire.dev/vtep-mac',
  nodeIP: 'podwire.dev/node-ip',
  vtepMac6: 'podwire.dev/vtep-mac-v6',
  nodeIP6: 'podwire.dev/node-ip-v6',
  backend: 'podwire.dev/backend',
} as const;

/** The cluster file's settings that are not per node: they come from the agent's flags. */
export interface ClusterSettings {
  /** One or two (kubeadm's --pod-network-cidr=10.244.0.0/16,fd00:10:244::/56). */
  clusterCIDRs: string[];
  backend: Backend;
  vxlan?: { vni?: number; port?: number; device?: string };
  mtu?: number;
  bridge?: string;
}

/** What podwire needs from a Node object, per family; missing until the cluster provides it. */
export interface NodeFacts {
  name: string;
  nodeIP: Partial<Record<Family, string>>;
  podCIDR: Partial<Record<Family, string>>;
  vtepMac: Partial<Record<Family, string>>;
}

/**
 * The family a value is meant for: a colon says IPv6. Not parsed here: a malformed podCIDR still goes to
 * the cluster's own checks, which refuse it naming the field, instead of the node waiting forever.
 */
const familyOf = (s: string): Family => (s.includes(':') ? 6 : 4);

/** A Node's InternalIPs and podCIDRs by family (kubelet --node-ip=v4,v6; kube-controller-manager one podCIDR per cluster CIDR). */
export function nodeFacts(n: V1Node): NodeFacts {
  const cidrs = n.spec?.podCIDRs?.length ? n.spec.podCIDRs : n.spec?.podCIDR ? [n.spec.podCIDR] : [];
  const f: NodeFacts = { name: n.metadata?.name ?? '', nodeIP: {}, podCIDR: {}, vtepMac: {} };
  for (const a of n.status?.addresses ?? []) {
    const fam = a.type === 'InternalIP' ? familyOf(a.address) : undefined;
    if (fam && !f.nodeIP[fam]) f.nodeIP[fam] = a.address;
  }
  for (const c of cidrs) {
    const fam = familyOf(c);
    if (fam && !f.podCIDR[fam]) f.podCIDR[fam] = c;
  }
  const ann = n.metadata?.annotations ?? {};
  if (ann[ANNOTATION.vtepMac]) f.vtepMac[4] = ann[ANNOTATION.vtepMac];
  if (ann[ANNOTATION.vtepMac6]) f.vtepMac[6] = ann[ANNOTATION.vtepMac6];
  return f;
}

/** The cluster's families, from its CIDRs. */
export const settingsFamilies = (s: ClusterSettings): Family[] => s.clusterCIDRs.map(familyOf).sort();

/** What a node lacks for the cluster's families, in words ("its IPv6 podCIDR"); undefined when nothing. */
export function lacking(f: NodeFacts, fams: readonly Family[]): string | undefined {
  for (const fam of fams) {
    if (!f.podCIDR[fam]) return `its ${fams.length > 1 ? `${familyName(fam)} ` : ''}podCIDR`;
    if (!f.nodeIP[fam]) return `its ${familyName(fam)} InternalIP`;
  }
  return undefined;
}

/**
 * The cluster as the API server describes it. A node without a podCIDR or an InternalIP of every family
 * yet is left out (it has no pods to reach); it joins on the update that gives it them.
 */
export function clusterFromNodes(s: ClusterSettings, nodes: readonly V1Node[]): { cluster: Cluster; waiting: string[] } {
  const fams = settingsFamilies(s);
  const facts = nodes.map(nodeFacts).sort((a, b) => a.name.localeCompare(b.name));
  const ready = facts.filter((f) => !lacking(f, fams));
  const { clusterCIDRs, ...rest } = s;
  const cluster = parseCluster({
    ...rest,
    clusterCIDRs,
    nodes: ready.map((f) => ({
      name: f.name,
      nodeIPs: fams.map((x) => f.nodeIP[x]),
      podCIDRs: fams.map((x) => f.podCIDR[x]),
      ...(f.vtepMac[4] && fams.includes(4) ? { vtepMac: f.vtepMac[4] } : {}),
      ...(f.vtepMac[6] && fams.includes(6) ? { vtepMac6: f.vtepMac[6] } : {}),
    })),
  });
  return { cluster, waiting: facts.filter((f) => lacking(f, fams)).map((f) => f.name) };
}

export interface KubeSourceOptions {
  /** Called for every failure of list or watch (the source retries by itself). */
  onError?(e: Error): void;
  /** Called when the watch is started again: after the server ended it, a 410 Gone, or a failure. */
  onRestart?(): void;
  /** Called after each successful list (the first one, and every re-list). */
  onListed?(): void;
  /** First pause before restarting a failed informer, in ms (doubles up to 30 s). */
  retryMs?: number;
}

export class KubeSource implements NodeSource {
  readonly name: string;
  private informer?: import('@kubernetes/client-node').Informer<V1Node> & import('@kubernetes/client-node').ObjectCache<V1Node>;
  private readonly listeners = new Set<() => void>();
  private retry?: NodeJS.Timeout;
  private stopped = false;
  private synced = false;
  /** Ends a start() still waiting for its first list when stop() is called. */
  private unblock?: () => void;

  constructor(
    private readonly kc: KubeConfig,
    private readonly settings: ClusterSettings,
    private readonly opts: KubeSourceOptions = {},
  ) {
    this.name = `${kc.getCurrentCluster()?.server ?? 'the API server'} (nodes)`;
  }

  /** Lists the nodes and starts watching; resolves after the first successful list (or when stopped). */
  async start(): Promise<void> {
    const k8s = await import('@kubernetes/client-node');
    const core = this.kc.makeApiClient(k8s.CoreV1Api);
    const first = this.opts.retryMs ?? 500;
    let pause = first;
    let listed!: () => void;
    const firstList = new Promise<void>((resolve) => (listed = this.unblock = resolve));
    const informer = k8s.makeInformer(this.kc, '/api/v1/nodes', async () => {
      const list = await core.listNode();
      this.synced = true;
      this.opts.onListed?.();
      pause = first;
      listed();
      return list;
    });
    this.informer = informer;
    const changed = () => {
      for (const l of this.listeners) l();
    };
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    // Every (re)start of the watch connects; all but the first are restarts.
    let connects = 0;
    informer.on('connect', () => {
      if (connects++) this.opts.onRestart?.();
    });
    informer.on('error', (e: unknown) => {
      this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
      if (this.stopped) return;
      clearTimeout(this.retry);
      this.retry = setTimeout(() => {
        pause = Math.min(pause * 2, 30_000);
        void informer.start().then(changed);
      }, pause);
    });
    // A failed first list (API server not up yet) is retried by the error handler like any other failure.
    await informer.start();
    await firstList;
    // The informer files the listed objects right after the list resolves; let it finish.
    await new Promise((r) => setImmediate(r));
  }

  stop(): void {
    this.stopped = true;
    this.unblock?.();
    clearTimeout(this.retry);
    void this.informer?.stop();
  }

  nodes(): readonly V1Node[] {
    if (!this.informer || !this.synced) throw new ClusterError('the node list has not been read from the API server yet');
    return this.informer.list();
  }

  node(name: string): V1Node | undefined {
    return this.informer?.get(name);
  }

  async load(): Promise<Cluster> {
    return clusterFromNodes(this.settings, this.nodes()).cluster;
  }

  watch(onChange: () => void): () => void {
    // Bursts (a re-list reports every node) fold into one call.
    let timer: NodeJS.Timeout | undefined;
    const l = () => {
      clearTimeout(timer);
      timer = setTimeout(onChange, 50);
    };
    this.listeners.add(l);
    return () => {
      clearTimeout(timer);
      this.listeners.delete(l);
    };
  }
}
