// Kubernetes as the node-list source: every Node's spec.podCIDRs (given by kube-controller-manager when the
// cluster was made with --pod-network-cidr) and its InternalIP, kept current by list + watch. The same
// Cluster as a cluster file comes out, so `podwire agent` reconciles through the same code as
// `podwire peers sync`.
import { familyOf } from '../net/ip.js';
//
// The informer (informer.ts) pages its lists, re-watches when the server ends a watch, re-lists after
// "410 Gone", retries any failure after a short jittered pause, and holds back a list that would drop
// most nodes (or this node) at once until another confirms it.
import type { FirewallSetting } from '../firewall/choose.js';
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
import { ApiClient } from './api.js';
import { type Backoff, type Following, Informer, dropManagedFields } from './informer.js';
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

/** What a node lacks for the cluster's families: the field and the family; undefined when nothing. */
export interface Lack {
  field: 'podCIDR' | 'InternalIP';
  family: Family;
  /** The cluster has two families (a podCIDR is then named by its family). */
  dual: boolean;
}

export function lacking(f: NodeFacts, fams: readonly Family[]): Lack | undefined {
  for (const family of fams) {
    if (!f.podCIDR[family]) return { field: 'podCIDR', family, dual: fams.length > 1 };
    if (!f.nodeIP[family]) return { field: 'InternalIP', family, dual: fams.length > 1 };
  }
  return undefined;
}

/** A lack in words, as the agent's messages say it: "podCIDR", "IPv6 podCIDR", "IPv4 InternalIP". */
export const lackWords = (l: Lack): string =>
  l.field === 'podCIDR' ? `${l.dual ? `${familyName(l.family)} ` : ''}podCIDR` : `${familyName(l.family)} InternalIP`;

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
  /** Called after each list that went into the cache (the first one, and every re-list). */
  onListed?(): void;
  /** A list held back (most nodes gone at once) or refused (this node missing), and whether it was confirmed. */
  onHeld?(reason: string, outcome: 'held' | 'refused' | 'confirmed'): void;
  /** Whether the agent follows the API server changed. */
  onFollowing?(f: Following): void;
  /** Retry pauses (tests shorten them); default 0.25 s doubling to 4 s, jittered. */
  backoff?: Backoff;
  /** A full list again every this many ms (0: never). */
  relistMs?: number;
  /** The wait before a held-back list is confirmed by another. */
  confirmMs?: number;
  /** This node's name: its own Node comes first when two claim one address or slice. */
  self?: string;
}

export class KubeSource implements NodeSource {
  readonly name: string;
  private informer?: Informer<V1Node>;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly kc: KubeConfig,
    private readonly settings: ClusterSettings,
    private readonly opts: KubeSourceOptions = {},
  ) {
    this.name = `${kc.getCurrentCluster()?.server ?? 'the API server'} (nodes)`;
  }

  /** Lists the nodes and starts watching; resolves after the first successful list (or when stopped). */
  async start(): Promise<void> {
    const self = this.opts.self;
    const o = this.opts;
    const informer = new Informer<V1Node>(new ApiClient(this.kc), {
      path: '/api/v1/nodes',
      resource: 'nodes',
      ...(o.backoff ? { backoff: o.backoff } : {}),
      relistMs: o.relistMs ?? 0,
      ...(o.confirmMs !== undefined ? { confirmMs: o.confirmMs } : {}),
      // A list without this node's own Node, once it was there, is not the cluster (a stale or broken
      // server): taking it would remove every peer. DELETE events still remove nodes one by one.
      refuse: (items, cached) =>
        self && cached.some((n) => n.metadata?.name === self) && !items.some((n) => n.metadata?.name === self)
          ? `a list of nodes without this node's own Node ${self}: not taken as the cluster`
          : undefined,
      transform: dropManagedFields,
      onChange: () => {
        for (const l of this.listeners) l();
      },
      onError: (e) => o.onError?.(e),
      onListed: () => o.onListed?.(),
      onRestart: () => o.onRestart?.(),
      ...(o.onHeld ? { onHeld: o.onHeld } : {}),
      ...(o.onFollowing ? { onFollowing: o.onFollowing } : {}),
    });
    this.informer = informer;
    informer.start();
    await informer.listed;
  }

  stop(): Promise<void> {
    return this.informer?.stop() ?? Promise.resolve();
  }

  following(): Following | undefined {
    return this.informer?.following();
  }

  nodes(): readonly V1Node[] {
    if (!this.informer?.hasListed()) throw new ClusterError('the node list has not been read from the API server yet');
    return this.informer.list();
  }

  node(name: string): V1Node | undefined {
    return this.informer?.get(name);
  }

  /** The nodes admitted by the last load: peers here already, which keep what they hold against a newcomer. */
  private established = new Set<string>();

  async load(): Promise<Cluster> {
    const self = this.opts.self;
    if (self && !this.node(self)) {
      // Not a cluster without this node: never synced as one (it would remove every peer).
      throw new ClusterError(`this node's own Node "${self}" is not among the ${this.nodes().length} the API server listed`);
    }
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
