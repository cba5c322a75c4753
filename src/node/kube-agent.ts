// `podwire agent`: the node agent with Kubernetes as the source of truth (what the DaemonSet runs).
//   1. list + watch Nodes (src/node/kube.ts);
//   2. wait until this node has a podCIDR (kube-controller-manager hands them out when the cluster was
//      made with --pod-network-cidr);
//   3. set the node up (bridge, VXLAN device, sysctls, iptables, subnet file) and write the CNI config
//      kubelet's runtime reads — both atomically and only when their content changes;
//   4. publish what peers may read (VTEP MAC, Node IP, backend) as annotations and mark the node's
//      NetworkUnavailable condition False, through nodes/status (the only write RBAC grants);
//   5. reconcile routes/FDB/neighbours to every other node, on every Node event and on a timer — the same
//      code as `podwire peers sync`. Its own node is set up again if its podCIDR or Node IP changes.
import type { KubeConfig } from '@kubernetes/client-node';
import subnetFileConflist from '../../cni-conf/podwire-subnetfile.conflist';
import { join } from 'node:path';
import { writeIfChanged } from '../runtime/files.js';
import { log } from '../runtime/log.js';
import { peerLoop } from './reconcile.js';
import { type Cluster, type Family, type LeftOut, type NodeEntry, joinPodCIDRs, leftOutMessage, selfNode } from './cluster.js';
import { writeLeftOut } from '../nodestate/reports.js';
import { ANNOTATION, type ClusterSettings, KubeSource, lackWords, lacking, nodeFacts, settingsFamilies } from './kube.js';
import { nodeUp } from './setup.js';
import type { SyncReport } from './sync.js';
import type { AgentStatus } from './agent-status.js';
import { ApiReporter } from '../nodestate/api-report.js';
import type { Backoff, FollowApi, Following } from './informer.js';

export const CONFLIST_NAME = '10-podwire.conflist';
export const NETWORK_UNAVAILABLE = 'NetworkUnavailable';

export interface AgentOptions {
  kc: KubeConfig;
  node: string;
  settings: ClusterSettings;
  subnetFile: string;
  /** Where the runtime reads network configs (/etc/cni/net.d). */
  confDir: string;
  /** Seconds between syncs when nothing happens. */
  resync: number;
  /** Seconds to wait for this node's podCIDR before giving up. */
  podCIDRTimeout: number;
  signal: AbortSignal;
  say(msg: string): void;
  onSync?(r: SyncReport): void;
  /** Health, readiness and metrics (served by the CLI, see agent-status.ts). */
  status?: AgentStatus;
  /** The conflist template's text (--conflist-template); the bundled one when undefined. */
  conflistTemplate?: string;
  /** Read the packets podwire drops (default true): logged, counted, served on /drops. */
  drops?: boolean;
  /** Enforce NetworkPolicies (default true); false removes the node's policy table. */
  networkPolicy?: boolean;
  /** Every informer lists everything again this often (ms; 0: never), and the kernel is reconciled against it. */
  relistMs?: number;
  /** Retry pauses and the wait before confirming a held-back list (tests shorten them). */
  backoff?: () => Backoff;
  confirmMs?: number;
}

export class AgentError extends Error {}

/**
 * The network config the agent installs: a template (the DaemonSet's ConfigMap, so a user can chain
 * bandwidth or tuning without rebuilding anything; by default cni-conf/podwire-subnetfile.conflist:
 * podwire alone, hostPorts built in) with the podwire plugin's slice read from the subnet file the agent
 * writes, so the config never changes when the node's podCIDR does. A template that is not a conflist
 * with a podwire plugin is refused before anything on the node changes.
 */
export function agentConflist(subnetFile: string, template?: string): string {
  let list: { name?: unknown; cniVersion?: unknown; plugins?: unknown };
  try {
    list = template === undefined ? structuredClone(subnetFileConflist) : JSON.parse(template);
  } catch (e) {
    throw new AgentError(`conflist template: not JSON (${(e as Error).message})`);
  }
  if (
    !list ||
    typeof list !== 'object' ||
    typeof list.name !== 'string' ||
    typeof list.cniVersion !== 'string' ||
    !Array.isArray(list.plugins)
  ) {
    throw new AgentError('conflist template: not a network configuration list (it needs name, cniVersion and plugins)');
  }
  const plugins = list.plugins as Record<string, unknown>[];
  const ours = plugins.filter((p) => p && typeof p === 'object' && p.type === 'podwire');
  if (ours.length !== 1) throw new AgentError(`conflist template: needs exactly one plugin of type podwire (found ${ours.length})`);
  ours[0]!.ipam = { ...(ours[0]!.ipam as object), type: 'podwire-ipam', subnetFile };
  return JSON.stringify(list, null, 2) + '\n';
}

/** What a node still lacks before the agent can set it up, in words; undefined when nothing. */
function missing(source: KubeSource, name: string, fams: readonly Family[]): string | undefined {
  const n = source.node(name);
  const facts = n && nodeFacts(n);
  if (!facts) return `node ${name} to be registered with the API server (by kubelet, with this node name)`;
  const lack = lacking(facts, fams);
  if (!lack) return undefined;
  return lack.field === 'podCIDR'
    ? `node ${name}'s ${lackWords(lack)} (kube-controller-manager gives one when the cluster was made with --pod-network-cidr)`
    : `node ${name}'s ${lackWords(lack)} (kubelet --node-ip)`;
}

/**
 * Resolves true once this node has a podCIDR and an InternalIP, false when stopped first. Says what it
 * waits for when it starts waiting and every 10 s after, instead of staying silent.
 */
async function waitForPodCIDR(o: AgentOptions, source: KubeSource): Promise<boolean> {
  const end = Date.now() + o.podCIDRTimeout * 1000;
  const fams = settingsFamilies(o.settings);
  let said = 0;
  for (;;) {
    if (o.signal.aborted) return false;
    const lack = missing(source, o.node, fams);
    o.status?.waiting(lack);
    if (!lack) return true;
    if (Date.now() >= end) {
      if (!source.node(o.node))
        throw new AgentError(`node ${o.node} is not registered with the API server (is kubelet running, with this node name?)`);
      const lack = lacking(nodeFacts(source.node(o.node)!), fams)!;
      if (lack.field === 'podCIDR')
        throw new AgentError(`node ${o.node} has no ${lackWords(lack)}: was the cluster created with --pod-network-cidr?`);
      throw new AgentError(`node ${o.node} has no ${lackWords(lack)} (kubelet --node-ip)`);
    }
    if (Date.now() - said >= 10_000) {
      o.say(`agent ${o.node}: waiting for ${lack}`);
      said = Date.now();
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Annotations and the NetworkUnavailable=False condition, in one strategic-merge patch of nodes/status. */
export function statusPatch(selfs: readonly NodeEntry[], c: Cluster, now = new Date()): object {
  const at = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const annotations: Record<string, string> = {};
  c.nets.forEach((net, i) => {
    const [mac, ip] = net.family === 4 ? [ANNOTATION.vtepMac, ANNOTATION.nodeIP] : [ANNOTATION.vtepMac6, ANNOTATION.nodeIP6];
    annotations[mac] = selfs[i]!.vtepMac;
    annotations[ip] = selfs[i]!.nodeIP;
  });
  annotations[ANNOTATION.backend] = c.backend;
  return {
    metadata: { annotations },
    status: {
      conditions: [
        {
          type: NETWORK_UNAVAILABLE,
          status: 'False',
          reason: 'PodwireIsUp',
          message: `podwire set up ${joinPodCIDRs(selfs)} on this node`,
          lastTransitionTime: at,
          lastHeartbeatTime: at,
        },
      ],
    },
  };
}

async function publish(kc: KubeConfig, self: NodeEntry[], c: Cluster): Promise<void> {
  const k8s = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.patchNodeStatus(
    { name: self[0]!.name, body: statusPatch(self, c) },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
  );
}

/**
 * Tells an operator about the Nodes left out, where they look: once per Node and reason, on stderr and in
 * the log (naming the object and the field), as a Warning Event on the Node, in the metrics and in a file
 * `status` and `doctor` read; and again when a Node is back.
 */
function leftOutReporter(o: AgentOptions): (now: readonly LeftOut[]) => void {
  let told = new Map<string, LeftOut>();
  return (now) => {
    const next = new Map(now.map((l) => [`${l.name}\0${l.field}\0${l.why}`, l]));
    for (const [k, l] of next) {
      if (told.has(k)) continue;
      o.say(`left out ${leftOutMessage(l)}`);
      log.warn({ node: l.name, field: l.field, why: l.why, reason: l.reason }, 'node left out');
      void nodeEvent(o.kc, l).catch((e: Error) => o.say(`cannot post an Event on node ${l.name}: ${e.message}`));
    }
    const back = [...told.values()].filter((l) => !now.some((x) => x.name === l.name));
    for (const name of new Set(back.map((l) => l.name))) o.say(`node ${name}: no longer left out`);
    told = next;
    o.status?.leftOut(now);
    writeLeftOut(o.subnetFile, now);
  };
}

/** A Warning Event for a NetworkPolicy podwire cannot read (kubectl describe node shows it). */
async function policyEvent(kc: KubeConfig, node: string, l: { name: string; why: string }): Promise<void> {
  const [namespace = '', name = ''] = l.name.split('/').map((x) => JSON.parse(x) as string);
  const k8s = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const now = new Date();
  // On this Node, in the default namespace like the Nodes' events: the agent may create Events there
  // only (RBAC), not in every namespace a policy lives in.
  await core.createNamespacedEvent({
    namespace: 'default',
    body: {
      metadata: { generateName: `${node}.podwire-` },
      involvedObject: { apiVersion: 'v1', kind: 'Node', name: node },
      reason: 'PodwirePolicyUnreadable',
      message: `podwire cannot read NetworkPolicy ${namespace}/${name} (${l.why}): the pods it selects are isolated, both ways, until it is fixed`,
      type: 'Warning',
      source: { component: 'podwire-agent' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    },
  });
}

/** A Warning Event on the Node (kubectl describe node shows it). */
async function nodeEvent(kc: KubeConfig, l: LeftOut): Promise<void> {
  const k8s = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const now = new Date();
  await core.createNamespacedEvent({
    namespace: 'default',
    body: {
      metadata: { generateName: `${l.name}.podwire-` },
      involvedObject: { apiVersion: 'v1', kind: 'Node', name: l.name },
      reason: 'PodwireNodeLeftOut',
      message: `podwire leaves this node out of every other node's routes: ${l.field} ${l.why}`,
      type: 'Warning',
      source: { component: 'podwire-agent' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    },
  });
}

/**
 * What every informer of the agent reports about its API server, wired to the operator's views: its state
 * to /readyz, the metrics and the report file status and doctor read; a list held back or refused to
 * stderr, the log and a metric. Returns the informer options that carry it, for one resource.
 */
function followApi(o: AgentOptions, reporter: ApiReporter): FollowApi {
  return (resource, following) => {
    o.status?.follow(resource, () => following() ?? { up: false, since: Date.now(), lastContact: 0, listed: false });
    return {
      relistMs: o.relistMs ?? 0,
      ...(o.backoff ? { backoff: o.backoff() } : {}),
      ...(o.confirmMs !== undefined ? { confirmMs: o.confirmMs } : {}),
      onFollowing: (f: Following) => {
        reporter.set(resource, f);
        if (f.up && f.listed) o.say(`API server (${resource}): following`);
        log[f.up ? 'info' : 'warn'](
          { resource, up: f.up, cause: f.cause },
          f.up ? 'following the API server' : 'not following the API server',
        );
      },
      onHeld: (reason: string, outcome: 'held' | 'refused' | 'confirmed') => {
        o.status?.listHeld(resource, outcome);
        const words = { held: 'held back until another list confirms it', refused: 'refused', confirmed: 'confirmed, taken' }[outcome];
        o.say(`API server (${resource}): ${reason}: ${words}`);
        log.warn({ resource, reason, outcome }, 'a list from the API server held back');
      },
    };
  };
}

export async function runAgent(o: AgentOptions): Promise<void> {
  // Bad input changes nothing on the node: the template is checked before anything else happens.
  const conflist = agentConflist(o.subnetFile, o.conflistTemplate);
  let listed = false;
  const reporter = new ApiReporter(o.subnetFile, o.kc.getCurrentCluster()?.server ?? 'the API server');
  const follow = followApi(o, reporter);
  const source: KubeSource = new KubeSource(o.kc, o.settings, {
    self: o.node,
    onError: (e) => {
      o.say(`API server (nodes): ${e.message}`);
      if (!listed) o.status?.waiting(`the API server (${e.message})`);
    },
    onRestart: () => o.status?.watchRestarted(),
    onListed: () => (listed = true),
    ...follow('nodes', (): Following | undefined => source.following()),
  });
  o.say(`agent ${o.node}: listing nodes from ${source.name}`);
  o.status?.waiting(`the API server (listing nodes from ${source.name})`);
  // Stopped while the API server is unreachable or the podCIDR is pending: leave without touching the node.
  const stop = () => source.stop();
  o.signal.addEventListener('abort', stop, { once: true });
  let policies: import('../policy/watch.js').PolicyWatch | undefined;
  let dropReader: import('../drops/ulogd.js').DropReader | undefined;
  try {
    await source.start();
    const { PolicyWatch } = await import('../policy/watch.js');
    const watch = new PolicyWatch({
      kc: o.kc,
      node: o.node,
      say: o.say,
      subnetFile: o.subnetFile,
      follow,
      onSync: (r) => {
        o.status?.policySynced(r);
        if (r.applied !== 'none')
          o.say(
            `network policy: ${r.applied} (${r.compiled?.policies.length ?? 0} policies, ${r.compiled?.rules ?? 0} rules, ${r.ms.toFixed(1)} ms)`,
          );
        log.info({ applied: r.applied, lines: r.lines, ms: r.ms, policies: r.compiled?.policies }, 'network policy sync');
      },
      onError: (e) => o.say(`network policy: ${e.message}`),
      onSyncFailed: (e) => o.status?.policyFailed(e),
      onLeftOut: (l) =>
        void policyEvent(o.kc, o.node, l).catch((e: Error) => o.say(`cannot post an Event for NetworkPolicy ${l.name}: ${e.message}`)),
    });
    if (o.drops !== false) {
      const { watchDrops } = await import('./drops.js');
      dropReader = watchDrops({
        say: o.say,
        onDrop: (d) => o.status?.drop(d),
        pod: (ip) => policies?.podAt(ip),
        policies: (ip, dir) => policies?.isolating(ip, dir) ?? [],
      });
    }
    if (o.networkPolicy === false) {
      if (await watch.off()) o.say('network policy: off (--network-policy=false): its table removed');
    } else {
      policies = watch;
      // Not awaited: the node's network comes up whether or not policies can be listed yet.
      watch.start().catch((e: unknown) => o.say(`network policy: ${(e as Error).message}`));
    }
    if (!(await waitForPodCIDR(o, source))) return;
    let applied = '';
    const tell = leftOutReporter(o);
    const prepare = async (c: Cluster): Promise<void> => {
      tell(c.leftOut ?? []);
      const self = selfNode(c, o.node);
      const key = JSON.stringify(self);
      if (key === applied) return;
      const up = await nodeUp(c, o.node, o.subnetFile);
      for (const w of up.warnings) o.say(`warning: ${w}`);
      for (const n of up.notes ?? []) o.say(`node ${o.node}: ${n}`);
      for (const ch of up.changes) o.say(`node ${o.node}: ${ch}`);
      // "none": the DaemonSet's init container wrote it (podwire install --agent-conflist); the agent has
      // no write access to the runtime's config directory.
      if (o.confDir !== 'none') {
        const conf = join(o.confDir, CONFLIST_NAME);
        if (writeIfChanged(conf, conflist)) o.say(`node ${o.node}: ${conf} written`);
      }
      await publish(o.kc, self, c);
      o.status?.nodeIsUp();
      o.say(`node ${o.node}: ${joinPodCIDRs(self)} ready, NetworkUnavailable=False`);
      log.info({ node: o.node, podCIDRs: self.map((x) => x.podCIDR) }, 'node ready');
      applied = key;
    };
    await peerLoop(source, {
      node: o.node,
      resync: o.resync,
      signal: o.signal,
      prepare,
      onSync: (r) => {
        o.status?.synced(r);
        o.onSync?.(r);
      },
      onError: (e, ms) => {
        o.status?.syncFailed(e, ms);
        o.say(`sync failed: ${e.message}`);
      },
    });
  } finally {
    o.signal.removeEventListener('abort', stop);
    source.stop();
    dropReader?.stop();
    await policies?.stop();
  }
}
