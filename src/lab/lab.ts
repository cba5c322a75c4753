// The multi-node lab as a set of network namespaces, and the steps the `lab` command and the tests take
// on it. Every node and pod step executes the real podwire binary inside the node's namespace, exactly as
// an administrator (node up, peers sync) or a runtime (CNI ADD/DEL) would.
//
//   pwlab-underlay   bridge ul0: the nodes' L2 segment 192.168.50.0/24 (nothing in the root namespace)
//   pwlab-nodeI      eth0 = Node IP 192.168.50.(10+I), podCIDR 10.244.I.0/24, cni0, podwire.1
//   pwlab-router     (auto mode) routes between 192.168.50.0/24 and 192.168.60.0/24, where the last
//                    node lives: that node is reached by VXLAN, the others by host-gw
//   pwlab-nI-podJ    a pod's network namespace (what the pause container holds)
//
// Each node keeps its own state under LAB_STATE/nodeI (cluster file, subnet file, IPAM dataDir, log), so
// nodes never share a file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import conflist from '../../cni-conf/podwire-subnetfile.conflist';
import type { Backend } from '../node/cluster.js';
import type { SyncReport } from '../node/sync.js';
import { type RunResult, run } from '../run.js';
import { LAB_PREFIX, LAB_STATE, delNetns, ip, netns } from './netns.js';
import { type Conflist, type Runner, addList, delList } from './runtime.js';

export const CLUSTER_CIDR = '10.244.0.0/16';
const REF_PLUGINS = '/usr/lib/cni';

export interface LabNode {
  name: string;
  ns: string;
  nodeIP: string;
  podCIDR: string;
  /** On the far side of the router (auto mode). */
  routed: boolean;
  dir: string;
  clusterFile: string;
  subnetFile: string;
  /** The conflist the node's "runtime" uses, also written to conflistFile for status and path. */
  list: Conflist;
  conflistFile: string;
  runner: Runner;
}

export interface LabPod {
  name: string;
  node: LabNode;
  ns: string;
  containerID: string;
  ip: string;
  veth: string;
  result: unknown;
  /** What the runtime passed (portMappings, ...); DEL gets it again, as libcni does. */
  runtimeConfig: Record<string, unknown>;
  /** podwire's trace of the ADD, when asked for (see addPod). */
  trace?: string;
}

export interface ClusterNodeJson {
  name: string;
  nodeIP: string;
  podCIDR: string;
  vtepMac?: string;
}
export interface ClusterJson {
  clusterCIDR: string;
  backend: Backend;
  nodes: ClusterNodeJson[];
}

export class LabError extends Error {}

/** Where a lab node keeps its files (and its namespace's name): podwire status --lab NODE reads them. */
export function labNodeFiles(name: string) {
  const dir = join(LAB_STATE, name);
  return {
    ns: `${LAB_PREFIX}${name}`,
    dir,
    clusterFile: join(dir, 'cluster.json'),
    subnetFile: join(dir, 'subnet.json'),
    conflistFile: join(dir, 'podwire.conflist'),
  };
}

/** PODWIRE_TRACE=stderr makes podwire tell each step of an ADD or DEL on stderr (src/cni/trace.ts). */
const traceEnv = (on: boolean) => (on ? { PODWIRE_TRACE: 'stderr' } : undefined);

const fail = (what: string, r: RunResult): never => {
  throw new LabError(`${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
};

export class Lab {
  readonly pods: LabPod[] = [];
  cluster: ClusterJson;

  private constructor(
    readonly bin: string,
    readonly mode: Backend,
    readonly nodes: LabNode[],
    /** A host outside the cluster on the nodes' network (192.168.50.250): a NodePort/hostPort client. */
    readonly outside: string,
  ) {
    this.cluster = {
      clusterCIDR: CLUSTER_CIDR,
      backend: mode,
      nodes: nodes.map((n) => ({ name: n.name, nodeIP: n.nodeIP, podCIDR: n.podCIDR })),
    };
  }

  /** Creates the namespaces and the underlay; nodes are not set up yet (see nodeUp). */
  static create(bin: string, mode: Backend, count: number): Lab {
    if (count < 1 || count > 200) throw new LabError('--nodes must be from 1 to 200');
    const underlay = netns(`${LAB_PREFIX}underlay`);
    ip('-n', underlay, 'link', 'add', 'ul0', 'type', 'bridge');
    ip('-n', underlay, 'link', 'set', 'ul0', 'up');
    const plug = (ns: string, port: string, dev = 'eth0') => {
      ip('-n', ns, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', port, 'netns', underlay);
      ip('-n', underlay, 'link', 'set', port, 'master', 'ul0', 'up');
      ip('-n', ns, 'link', 'set', dev, 'up');
    };
    // auto mode (with two nodes or more): the last node sits behind a router, on another subnet.
    const routedIndex = mode === 'auto' && count > 1 ? count : 0;
    let router: string | undefined;
    if (routedIndex) {
      router = netns(`${LAB_PREFIX}router`);
      plug(router, 'router');
      ip('-n', router, 'addr', 'add', '192.168.50.1/24', 'dev', 'eth0');
      ip('netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    }
    const nodes: LabNode[] = [];
    for (let i = 1; i <= count; i++) {
      const name = `node${i}`;
      const files = labNodeFiles(name);
      const ns = netns(files.ns);
      const routed = i === routedIndex;
      let nodeIP: string;
      if (routed) {
        ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', router!);
        ip('-n', router!, 'addr', 'add', '192.168.60.1/24', 'dev', 'eth1');
        ip('-n', router!, 'link', 'set', 'eth1', 'up');
        ip('-n', ns, 'link', 'set', 'eth0', 'up');
        nodeIP = `192.168.60.${10 + i}`;
        ip('-n', ns, 'addr', 'add', `${nodeIP}/24`, 'dev', 'eth0');
        ip('-n', ns, 'route', 'add', 'default', 'via', '192.168.60.1');
      } else {
        plug(ns, name);
        nodeIP = `192.168.50.${10 + i}`;
        ip('-n', ns, 'addr', 'add', `${nodeIP}/24`, 'dev', 'eth0');
        if (router) ip('-n', ns, 'route', 'add', '192.168.60.0/24', 'via', '192.168.50.1');
      }
      const { dir, subnetFile } = files;
      mkdirSync(dir, { recursive: true });
      const list: Conflist = structuredClone(conflist);
      for (const p of list.plugins) {
        if (p.type === 'podwire')
          Object.assign(p, { logFile: join(dir, 'podwire.log'), ipam: { ...p.ipam, subnetFile, dataDir: join(dir, 'ipam') } });
      }
      writeFileSync(files.conflistFile, JSON.stringify(list, null, 2) + '\n');
      nodes.push({
        ...files,
        name,
        nodeIP,
        podCIDR: `10.244.${i}.0/24`,
        routed,
        list,
        runner: { node: ns, podwire: bin, cniPath: [REF_PLUGINS] },
      });
    }
    const outside = netns(`${LAB_PREFIX}outside`);
    plug(outside, 'outside');
    ip('-n', outside, 'addr', 'add', '192.168.50.250/24', 'dev', 'eth0');
    if (router) ip('-n', outside, 'route', 'add', '192.168.60.0/24', 'via', '192.168.50.1');
    const lab = new Lab(bin, mode, nodes, outside);
    lab.writeCluster();
    return lab;
  }

  node(name: string): LabNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new LabError(`no lab node ${name}`);
    return n;
  }

  /** Writes the cluster file, one copy per node (nodes share no file). */
  writeCluster(): void {
    for (const n of this.nodes) writeFileSync(n.clusterFile, JSON.stringify(this.cluster, null, 2) + '\n');
  }

  /** Runs `podwire ARGS --cluster ... --node ...` in the node's namespace. */
  podwire(n: LabNode, ...args: string[]): Promise<RunResult> {
    return run('ip', [
      'netns',
      'exec',
      n.ns,
      this.bin,
      ...args,
      '--cluster',
      n.clusterFile,
      '--node',
      n.name,
      '--subnet-file',
      n.subnetFile,
    ]);
  }

  async nodeUp(n: LabNode): Promise<string[]> {
    const r = await this.podwire(n, 'node', 'up', '--json');
    if (r.code !== 0) fail(`${n.name}: podwire node up`, r);
    return (JSON.parse(r.stdout) as { changes: string[] }).changes;
  }

  async nodeDown(n: LabNode): Promise<string[]> {
    const r = await this.podwire(n, 'node', 'down', '--json');
    if (r.code !== 0) fail(`${n.name}: podwire node down`, r);
    return (JSON.parse(r.stdout) as { changes: string[] }).changes;
  }

  async sync(n: LabNode): Promise<Pick<SyncReport, 'changes' | 'processes'> & { peers: { name: string; mode: string }[] }> {
    const r = await this.podwire(n, 'peers', 'sync', '--json');
    if (r.code !== 0) fail(`${n.name}: podwire peers sync`, r);
    return JSON.parse(r.stdout);
  }

  /**
   * ADD through the conflist, as a runtime does for a pod's pause container; `trace` keeps podwire's trace.
   * Like containerd, it passes the sandbox's port mappings (none for most pods) on ADD and again on DEL.
   */
  async addPod(n: LabNode, name: string, runtimeConfig: Record<string, unknown> = { portMappings: [] }, trace = false): Promise<LabPod> {
    const ns = netns(`${LAB_PREFIX}n${n.name.slice(4)}-${name}`);
    const containerID = `lab-${n.name}-${name}`;
    const r = await addList(n.runner, n.list, { containerID, netns: `/run/netns/${ns}`, env: traceEnv(trace) }, runtimeConfig);
    if (r.code !== 0) fail(`ADD ${name} on ${n.name}`, r);
    const host = r.json.interfaces.find((x: { name: string; sandbox?: string }) => !x.sandbox && x.name.startsWith('veth'));
    const pod: LabPod = {
      name,
      node: n,
      ns,
      containerID,
      ip: r.json.ips[0].address.split('/')[0],
      veth: host?.name ?? '?',
      result: r.json,
      runtimeConfig,
    };
    if (trace) pod.trace = r.stderr;
    this.pods.push(pod);
    return pod;
  }

  /** DEL through the conflist; returns podwire's trace of it when `trace` is set. */
  async delPod(p: LabPod, trace = false): Promise<string> {
    const attach = { containerID: p.containerID, netns: `/run/netns/${p.ns}`, env: traceEnv(trace) };
    const replies = await delList(p.node.runner, p.node.list, attach, p.result, p.runtimeConfig);
    const bad = replies.find((x) => x.code !== 0);
    if (bad) fail(`DEL ${p.name} on ${p.node.name}`, bad);
    delNetns(p.ns);
    this.pods.splice(this.pods.indexOf(p), 1);
    return trace ? replies.map((x) => x.stderr).join('') : '';
  }
}
