// The multi-node lab as a set of network namespaces, and the steps the `lab` command and the tests take
// on it. Every node and pod step executes the real podwire binary inside the node's namespace, exactly as
// an administrator (node up, peers sync) or a runtime (CNI ADD/DEL) would.
//
//   pwlab-underlay   bridge ul0: the nodes' L2 segment 192.168.50.0/24 and fd00:50::/64 (nothing in the
//                    root namespace)
//   pwlab-nodeI      eth0 = Node IP 192.168.50.(10+I) / fd00:50::(10+I), podCIDR 10.244.I.0/24 /
//                    fd00:10:244:I::/64, cni0, podwire.1 / podwire-v6.1
//   pwlab-router     (auto mode) routes between 192.168.50.0/24 and 192.168.60.0/24 (fd00:50::/64 and
//                    fd00:60::/64), where the last node lives: that node is reached by VXLAN, the others
//                    by host-gw
//   pwlab-nI-podJ    a pod's network namespace (what the pause container holds)
// --family picks the address families: ipv4 (the default), ipv6, or dual (both, on every node and pod).
//
// Each node keeps its own state under LAB_STATE/nodeI (cluster file, subnet file, IPAM dataDir, log), so
// nodes never share a file.
import { type FirewallSetting } from '../firewall/choose.js';
import { onPath } from '../kernel/tools.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import conflist from '../../cni-conf/podwire-subnetfile.conflist';
import type { Backend, Family } from '../node/cluster.js';
import type { SyncReport } from '../node/sync.js';
import { type RunResult, run } from '../runtime/run.js';
import { LAB_PREFIX, LAB_STATE, delNetns, ip, netns } from './netns.js';
import { type Conflist, type Runner, addList, delList } from './runtime.js';
import { addrLine } from '../kernel/links.js';
import { lang } from '../i18n/index.js';

export const CLUSTER_CIDR = '10.244.0.0/16';
const REF_PLUGINS = '/usr/lib/cni';

export type LabFamily = 'ipv4' | 'ipv6' | 'dual';
export const LAB_FAMILIES: readonly LabFamily[] = ['ipv4', 'ipv6', 'dual'];
export const labFamilies = (f: LabFamily): Family[] => (f === 'ipv4' ? [4] : f === 'ipv6' ? [6] : [4, 6]);

/** The lab's addresses in one family: the same plan in both, IPv6's ULA mirroring IPv4's private ranges. */
export interface FamilyPlan {
  family: Family;
  clusterCIDR: string;
  /** The Service network (kubeadm's defaults: 10.96.0.0/12, and a /108 for IPv6). */
  serviceCIDR: string;
  podCIDR(i: number): string;
  nodeIP(i: number, routed: boolean): string;
  /** The nodes' segment, the routed one (auto mode), and the prefix length of both. */
  subnet: string;
  routedSubnet: string;
  prefix: number;
  router: string;
  routerRouted: string;
  outside: string;
  clusterIP(k: number): string;
}

export const PLANS: Record<Family, FamilyPlan> = {
  4: {
    family: 4,
    clusterCIDR: CLUSTER_CIDR,
    serviceCIDR: '10.96.0.0/12',
    podCIDR: (i) => `10.244.${i}.0/24`,
    nodeIP: (i, routed) => `192.168.${routed ? 60 : 50}.${10 + i}`,
    subnet: '192.168.50.0/24',
    routedSubnet: '192.168.60.0/24',
    prefix: 24,
    router: '192.168.50.1',
    routerRouted: '192.168.60.1',
    outside: '192.168.50.250',
    clusterIP: (k) => `10.96.0.${10 + k}`,
  },
  6: {
    family: 6,
    clusterCIDR: 'fd00:10:244::/48',
    serviceCIDR: 'fd00:10:96::/108',
    podCIDR: (i) => `fd00:10:244:${i}::/64`,
    nodeIP: (i, routed) => `fd00:${routed ? 60 : 50}::${10 + i}`,
    subnet: 'fd00:50::/64',
    routedSubnet: 'fd00:60::/64',
    prefix: 64,
    router: 'fd00:50::1',
    routerRouted: 'fd00:60::1',
    outside: 'fd00:50::250',
    clusterIP: (k) => `fd00:10:96::${10 + k}`,
  },
};

/** `ip addr add` (IPv6 without duplicate address detection: the lab's addresses are its own), as the plugin writes it. */
const addAddr = (ns: string, cidr: string, dev: string) => ip('-n', ns, ...addrLine('add', cidr, dev).split(' '));

/** A node's address and slice in one family. */
export interface NodeNet {
  family: Family;
  nodeIP: string;
  podCIDR: string;
}

export interface LabNode {
  name: string;
  ns: string;
  /** The first family's (IPv4 unless the lab is IPv6 only); `nets` has every family's. */
  nodeIP: string;
  podCIDR: string;
  nets: NodeNet[];
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
  /** The first family's Pod IP; `ips` has one per family. */
  ip: string;
  ips: string[];
  veth: string;
  result: unknown;
  /** What the runtime passed (portMappings, ...); DEL gets it again, as libcni does. */
  runtimeConfig: Record<string, unknown>;
  /** podwire's trace of the ADD, when asked for (see addPod). */
  trace?: string;
}

/** A node as the cluster file lists it: one family (nodeIP, podCIDR) or two (nodeIPs, podCIDRs). */
export interface ClusterNodeJson {
  name: string;
  nodeIP?: string;
  podCIDR?: string;
  nodeIPs?: string[];
  podCIDRs?: string[];
  vtepMac?: string;
  vtepMac6?: string;
}
export interface ClusterJson {
  clusterCIDR?: string;
  clusterCIDRs?: string[];
  backend: Backend;
  /** The nodes' firewall backend (firewall/choose.ts); absent: auto. */
  firewall?: FirewallSetting;
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

/** PODWIRE_TRACE=stderr makes podwire tell each step of an ADD or DEL on stderr (src/cni/trace.ts), in the lab's language. */
const traceEnv = (on: boolean) => (on ? { PODWIRE_TRACE: 'stderr', PODWIRE_LANG: lang() } : undefined);

const fail = (what: string, r: RunResult): never => {
  throw new LabError(`${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
};

export type ProxyMode = 'iptables' | 'nftables';
export const PROXY_MODES: readonly ProxyMode[] = ['iptables', 'nftables'];
/** kube-proxy's mode when none is asked for: iptables (what kubeadm clusters run) where iptables is installed. */
export const defaultProxy = (): ProxyMode => (onPath('iptables-restore') ? 'iptables' : 'nftables');

/** The mode asked for, refused clearly before anything is made when its tool is missing. */
export function proxyMode(asked: ProxyMode | undefined): ProxyMode {
  const mode = asked ?? defaultProxy();
  if (mode === 'iptables' && !onPath('iptables-restore')) {
    throw new LabError(
      '--proxy iptables writes the Services as kube-proxy does with iptables, and iptables is not installed here: use --proxy nftables',
    );
  }
  return mode;
}

export class Lab {
  readonly pods: LabPod[] = [];
  cluster: ClusterJson;
  /** Which mode of kube-proxy the lab's Services are written in (services.ts). */
  proxy: ProxyMode = 'iptables';

  private constructor(
    readonly bin: string,
    readonly mode: Backend,
    readonly nodes: LabNode[],
    /** A host outside the cluster on the nodes' network (192.168.50.250, fd00:50::250): a NodePort/hostPort client. */
    readonly outside: string,
    readonly family: LabFamily,
  ) {
    const fams = labFamilies(family);
    const one = fams.length === 1;
    this.cluster = {
      ...(one ? { clusterCIDR: PLANS[fams[0]!].clusterCIDR } : { clusterCIDRs: fams.map((f) => PLANS[f].clusterCIDR) }),
      backend: mode,
      nodes: nodes.map((n) =>
        one
          ? { name: n.name, nodeIP: n.nodeIP, podCIDR: n.podCIDR }
          : { name: n.name, nodeIPs: n.nets.map((x) => x.nodeIP), podCIDRs: n.nets.map((x) => x.podCIDR) },
      ),
    };
  }

  /** The lab's families, in order (IPv4 first). */
  get families(): Family[] {
    return labFamilies(this.family);
  }

  /** Creates the namespaces and the underlay; nodes are not set up yet (see nodeUp). */
  static create(bin: string, mode: Backend, count: number, family: LabFamily = 'ipv4', firewall?: FirewallSetting): Lab {
    if (count < 1 || count > 200) throw new LabError('--nodes must be from 1 to 200');
    if (!LAB_FAMILIES.includes(family)) throw new LabError(`--family must be one of ${LAB_FAMILIES.join(', ')}`);
    const plans = labFamilies(family).map((f) => PLANS[f]);
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
      ip(
        '-n',
        router,
        'link',
        'add',
        'eth1',
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        netns(labNodeFiles(`node${routedIndex}`).ns),
      );
      ip('-n', router, 'link', 'set', 'eth1', 'up');
      for (const p of plans) {
        addAddr(router, `${p.router}/${p.prefix}`, 'eth0');
        addAddr(router, `${p.routerRouted}/${p.prefix}`, 'eth1');
      }
      ip('netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');
    }
    const nodes: LabNode[] = [];
    for (let i = 1; i <= count; i++) {
      const name = `node${i}`;
      const files = labNodeFiles(name);
      const routed = i === routedIndex;
      const ns = routed ? files.ns : netns(files.ns);
      if (routed) ip('-n', ns, 'link', 'set', 'eth0', 'up');
      else plug(ns, name);
      const nets: NodeNet[] = plans.map((p) => ({ family: p.family, nodeIP: p.nodeIP(i, routed), podCIDR: p.podCIDR(i) }));
      for (const [k, p] of plans.entries()) {
        addAddr(ns, `${nets[k]!.nodeIP}/${p.prefix}`, 'eth0');
        if (routed) ip('-n', ns, 'route', 'add', 'default', 'via', p.routerRouted);
        else if (router) ip('-n', ns, 'route', 'add', p.routedSubnet, 'via', p.router);
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
        nodeIP: nets[0]!.nodeIP,
        podCIDR: nets[0]!.podCIDR,
        nets,
        routed,
        list,
        runner: { node: ns, podwire: bin, cniPath: [REF_PLUGINS] },
      });
    }
    const outside = netns(`${LAB_PREFIX}outside`);
    plug(outside, 'outside');
    for (const p of plans) {
      addAddr(outside, `${p.outside}/${p.prefix}`, 'eth0');
      if (router) ip('-n', outside, 'route', 'add', p.routedSubnet, 'via', p.router);
    }
    const lab = new Lab(bin, mode, nodes, outside, family);
    if (firewall) lab.cluster.firewall = firewall;
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

  async sync(n: LabNode): Promise<Pick<SyncReport, 'changes' | 'processes'> & { peers: { name: string; mode: string; family: Family }[] }> {
    const r = await this.podwire(n, 'peers', 'sync', '--json');
    if (r.code !== 0) fail(`${n.name}: podwire peers sync`, r);
    return JSON.parse(r.stdout);
  }

  /**
   * ADD through the conflist, as a runtime does for a pod's pause container; `trace` keeps podwire's trace.
   * Like containerd, it passes the sandbox's port mappings (none for most pods) on ADD and again on DEL.
   */
  async addPod(
    n: LabNode,
    name: string,
    runtimeConfig: Record<string, unknown> = { portMappings: [] },
    trace = false,
    /** CNI_ARGS, as a runtime passes them (IP=... for a fixed address). */
    args?: string,
  ): Promise<LabPod> {
    const ns = netns(`${LAB_PREFIX}n${n.name.slice(4)}-${name}`);
    const containerID = `lab-${n.name}-${name}`;
    const r = await addList(
      n.runner,
      n.list,
      { containerID, netns: `/run/netns/${ns}`, env: traceEnv(trace), ...(args ? { args } : {}) },
      runtimeConfig,
    );
    if (r.code !== 0) fail(`ADD ${name} on ${n.name}`, r);
    const host = r.json.interfaces.find((x: { name: string; sandbox?: string }) => !x.sandbox && x.name.startsWith('veth'));
    const pod: LabPod = {
      name,
      node: n,
      ns,
      containerID,
      ip: r.json.ips[0].address.split('/')[0],
      ips: r.json.ips.map((x: { address: string }) => x.address.split('/')[0]),
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
