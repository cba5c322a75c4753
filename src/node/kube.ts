// Kubernetes as the node-list source: every Node's spec.podCIDRs (given by kube-controller-manager when the
// cluster was made with --pod-network-cidr) and its InternalIP, kept current by list + watch. The same
// Cluster as a cluster file comes out, so `podwire agent` reconciles through the same code as
// `podwire peers sync`.
//
// The informer (@kubernetes/client-node) re-watches when the server ends a watch and re-lists after
// "410 Gone" (its resourceVersion was compacted away); any other failure (API server restarting,
// connection refused) stops it, and we start it again after a short, growing pause.
import type { FirewallSetting } from '../kernel/backend.js';
import type { KubeConfig, V1Node } from '@kubernetes/client-node';
import {
  type Backend,
  type Cluster,
  ClusterError,
  type Family,
  type Given,
  type LeftOut,
  type NodeClaim,
  admitNodes,
  familyName,
  leftOutMessage,
  parseBase,
} from './cluster.js';
import type { NodeSource } from './source.js';
import type { OffloadSetting } from '../kernel/ethtool.js';

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
  vxlan?: { vni?: number; port?: number; device?: string; checksumOffload?: OffloadSetting };
  mtu?: number;
  bridge?: string;
  firewall?: FirewallSetting;
}

/** What podwire needs from a Node object, per family, with the field each came from; missing until the cluster provides it. */
export interface NodeFacts {
  name: string;
  /** metadata.creationTimestamp: of two Nodes claiming one address or slice, the older keeps it. */
  created?: string;
  nodeIP: Partial<Record<Family, Given>>;
  podCIDR: Partial<Record<Family, Given>>;
  vtepMac: Partial<Record<Family, Given>>;
}

/**
 * The family a value is meant for: a colon says IPv6. Not parsed here: a malformed podCIDR still goes to
 * the shared checks, which leave the node out naming the field, instead of the node waiting forever.
 */
const familyOf = (s: string): Family => (s.includes(':') ? 6 : 4);

/** A Node's InternalIPs and podCIDRs by family (kubelet --node-ip=v4,v6; kube-controller-manager one podCIDR per cluster CIDR). */
export function nodeFacts(n: V1Node): NodeFacts {
  const f: NodeFacts = { name: n.metadata?.name ?? '', nodeIP: {}, podCIDR: {}, vtepMac: {} };
  const created = n.metadata?.creationTimestamp;
  if (created) f.created = created instanceof Date ? created.toISOString() : String(created);
  (n.status?.addresses ?? []).forEach((a, k) => {
    const fam = a.type === 'InternalIP' && typeof a.address === 'string' ? familyOf(a.address) : undefined;
    if (fam && !f.nodeIP[fam]) f.nodeIP[fam] = { value: a.address, field: `status.addresses[${k}]` };
  });
  const [cidrs, key] = n.spec?.podCIDRs?.length
    ? [n.spec.podCIDRs, 'spec.podCIDRs']
    : [n.spec?.podCIDR ? [n.spec.podCIDR] : [], 'spec.podCIDR'];
  cidrs.forEach((c, k) => {
    const fam = typeof c === 'string' ? familyOf(c) : undefined;
    if (fam && !f.podCIDR[fam]) f.podCIDR[fam] = { value: c, field: key === 'spec.podCIDR' ? key : `${key}[${k}]` };
  });
  const ann = n.metadata?.annotations ?? {};
  for (const [fam, key] of [
    [4, ANNOTATION.vtepMac],
    [6, ANNOTATION.vtepMac6],
  ] as const) {
    if (ann[key]) f.vtepMac[fam] = { value: ann[key], field: `metadata.annotations["${key}"]` };
  }
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

/** Whose claim comes first when two Nodes claim one address, slice or MAC. */
export interface Precedence {
  /** This node: always first (it is set up from its own Node). */
  self?: string;
  /** Nodes that are peers here already: before any newcomer. */
  established?: ReadonlySet<string>;
}

/**
 * The cluster as the API server describes it, each Node judged on its own (cluster.ts admitNodes): a node
 * without a podCIDR or an InternalIP of every family yet is waiting (it has no pods to reach) and joins
 * on the update that gives it them; a Node whose values cannot be used is left out, with the reason, and
 * every other node goes on. This node's own Node left out is an error: it cannot be set up.
 */
export function clusterFromNodes(
  s: ClusterSettings,
  nodes: readonly V1Node[],
  prec: Precedence = {},
): { cluster: Cluster; waiting: string[]; leftOut: LeftOut[] } {
  const fams = settingsFamilies(s);
  const { clusterCIDRs, ...rest } = s;
  const base = parseBase({ ...rest, clusterCIDRs });
  const rank = (f: NodeFacts): number => (f.name === prec.self ? 0 : prec.established?.has(f.name) ? 1 : 2);
  const facts = nodes
    .map(nodeFacts)
    .sort((a, b) => rank(a) - rank(b) || (a.created ?? '').localeCompare(b.created ?? '') || a.name.localeCompare(b.name));
  const ready = facts.filter((f) => !lacking(f, fams));
  const claims: NodeClaim[] = ready.map((f) => ({
    name: { value: f.name, field: 'metadata.name' },
    nodeIP: f.nodeIP,
    podCIDR: f.podCIDR,
    vtepMac: f.vtepMac,
  }));
  const { cluster, leftOut } = admitNodes(base, claims);
  for (const net of cluster.nets) net.nodes.sort((a, b) => a.name.localeCompare(b.name));
  const self = leftOut.find((l) => l.name === prec.self);
  if (self) throw new ClusterError(leftOutMessage(self));
  return { cluster, waiting: facts.filter((f) => lacking(f, fams)).map((f) => f.name), leftOut };
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
  /** This node's name: its own Node comes first when two claim one address or slice. */
  self?: string;
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

  /** The nodes admitted by the last load: peers here already, which keep what they hold against a newcomer. */
  private established = new Set<string>();

  async load(): Promise<Cluster> {
    const { cluster, leftOut } = clusterFromNodes(this.settings, this.nodes(), { self: this.opts.self, established: this.established });
    this.established = new Set(cluster.nets[0]?.nodes.map((n) => n.name));
    return { ...cluster, leftOut };
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
