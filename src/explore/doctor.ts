// `podwire doctor`: one node checked against the ways pods stop talking that people keep reporting
// (flannel's tracker is full of them): forwarding off, br_netfilter missing, strict rp_filter, a FORWARD
// policy of DROP, an MTU too big for the overlay, VXLAN's UDP port dropped on the way, checksum offload,
// stale or missing routes/neighbours/FDB entries, the node subnet file missing or wrong, a plugin binary of
// another version, leaked reservations. Each finding says what is wrong, why pods break, and the exact
// commands that fix it; the safe ones (what `node up` and `peers sync` would do anyway) are marked so
// --fix can apply them. It reads the kernel, the CNI config and the IPAM store; the only packets it sends
// are pings through the overlay to peers' VTEP addresses, which travel to the cluster's own Node IPs.
import { existsSync, readFileSync } from 'node:fs';
import { t } from '../i18n/index.js';
import { IN_FLIGHT_MS } from '../ipam/allocator.js';
import { DEFAULT_DATA_DIR } from '../ipam/config.js';
import { DEFAULT_SUBNET_FILE } from '../ipam/subnet-file.js';
import { DiskStore } from '../ipam/disk-store.js';
import { offloadDecision, txChecksum, txChecksumSet } from '../kernel/ethtool.js';
import { sys } from '../files.js';
import { forwardState, podwireIptablesChains } from '../kernel/firewall.js';
import type { PolicyReport } from '../node/policy/enforce.js';
import { type FirewallBackend, onPath } from '../kernel/backend.js';
import { NFT_TABLE, nftNodeProblems, readTable } from '../kernel/nftables.js';
import { type Link, type Route, linkByName, readState, routeGet, rxPackets } from '../kernel/state.js';
import { subnetClash } from '../kernel/guard.js';
import { parseCidr } from '../net/ip.js';
import { devSysctl, readSysctl, rpFilter } from '../kernel/sysctl.js';
import { VXLAN_OVERHEAD, type Cluster, type Family, familyName, families, leftOutMessage, selfNode } from '../node/cluster.js';
import { findUnderlay } from '../node/sync.js';
import { run } from '../run.js';
import { type NodeStatus, type PodwireConf, type VxlanRow, nodeStatus } from './status.js';

/** A command that fixes a finding, as an argument vector (with its stdin): run as it is, never through a shell. */
export interface Fix {
  argv: string[];
  input?: string;
  /** Where it must run when that is not this node (a peer, a machine with kubectl). */
  on?: string;
}

export interface Finding {
  check: string;
  ok: boolean;
  what: string;
  why?: string;
  fix?: Fix[];
  /** `doctor --fix` applies it: what `node up` or `peers sync` would do anyway. */
  safe?: boolean;
}

export interface DoctorOptions {
  conf?: PodwireConf;
  /** Why no config was found. */
  confError?: string;
  cluster?: Cluster;
  clusterFile?: string;
  node?: string;
  /** The CNI plugin directory the runtime executes podwire from. */
  binDir: string;
  /** This binary (fixes run it) and its version. */
  self: string;
  version: string;
  /** Prefix of a command run on `node` (this one when undefined) from where the user is: [] on a real node. */
  where(node?: string): string[];
  /** Send the VXLAN probes (default on). */
  probe?: boolean;
}

export interface DoctorReport {
  node?: string;
  findings: Finding[];
  problems: number;
}

const ok = (check: string, what: string): Finding => ({ check, ok: true, what });
const bad = (check: string, what: string, why: string, fix: Fix[] = [], safe = false): Finding => ({
  check,
  ok: false,
  what,
  why,
  fix,
  safe,
});

/** Runs the checks; nothing on the node changes. */
export async function doctor(o: DoctorOptions): Promise<DoctorReport> {
  const here = (argv: string[], input?: string): Fix => ({ argv: [...o.where(), ...argv], ...(input === undefined ? {} : { input }) });
  const subnetFile = o.conf?.plugin.ipam?.subnetFile as string | undefined;
  const nodeUp: Fix[] =
    o.clusterFile && o.node
      ? [here([o.self, 'node', 'up', '--cluster', o.clusterFile, '--node', o.node, ...(subnetFile ? ['--subnet-file', subnetFile] : [])])]
      : [restartAgent(o.node)];
  const peersSync: Fix[] =
    o.clusterFile && o.node ? [here([o.self, 'peers', 'sync', '--cluster', o.clusterFile, '--node', o.node])] : [restartAgent(o.node)];
  const f: Finding[] = [];

  // The CNI config and the binary the runtime runs.
  let st: NodeStatus | undefined;
  if (!o.conf) {
    f.push(
      bad(
        'cni-config',
        o.confError ?? 'no network config with a podwire plugin',
        'the runtime reports NetworkReady=false and starts no pod on this node until a config is in its conf dir',
        [here([o.self, 'install', '--conflist', 'cni-conf/podwire-subnetfile.conflist'])],
      ),
    );
  } else {
    f.push(ok('cni-config', `${o.conf.file}: network ${o.conf.network}`));
    f.push(await checkBinary(o, here));
    st = await nodeStatus({ conf: o.conf, cluster: o.cluster, node: o.node });
    f.push(checkSubnetFile(o, st, subnetFile, nodeUp));
  }

  // Settings every pod depends on, per family.
  const fams: Family[] = o.cluster
    ? families(o.cluster)
    : st?.node
      ? (st.node.clusterCIDRs.map((c) => (c.includes(':') ? 6 : 4)) as Family[])
      : [4];
  for (const fam of fams) {
    const [key, name] =
      fam === 4 ? ['net/ipv4/ip_forward', 'net.ipv4.ip_forward'] : ['net/ipv6/conf/all/forwarding', 'net.ipv6.conf.all.forwarding'];
    f.push(
      readSysctl(key) === '1'
        ? ok('ip-forward', `${name}=1`)
        : bad(
            'ip-forward',
            `${name} is 0: this node does not route ${familyName(fam)}`,
            `${familyName(fam)} packets between cni0, the VXLAN device and the uplink are dropped: pods reach only their own node's pods`,
            [here(['sysctl', '-w', `${name}=1`])],
            true,
          ),
    );
  }
  const brKeys = fams.map((fam) => `net.bridge.bridge-nf-call-ip${fam === 6 ? '6' : ''}tables`);
  const brOff = brKeys.filter((k) => readSysctl(k.replace(/\./g, '/')) !== '1');
  const loaded = readSysctl('net/bridge/bridge-nf-call-iptables') !== undefined;
  f.push(
    !brOff.length
      ? ok('br-netfilter', `br_netfilter loaded, ${brKeys.map((k) => `${k}=1`).join(', ')}`)
      : bad(
          'br-netfilter',
          loaded ? `${brOff.join(' and ')} ${brOff.length > 1 ? 'are' : 'is'} 0` : 'br_netfilter is not loaded',
          "traffic between two pods on the same cni0 never meets iptables, so kube-proxy's DNAT of a Service whose backend is on " +
            "the client's own node is not undone on the reply: those connections hang",
          [...(loaded ? [] : [here(['modprobe', 'br_netfilter'])]), ...brOff.map((k) => here(['sysctl', '-w', `${k}=1`]))],
          true,
        ),
  );
  const cidrs = o.cluster ? o.cluster.nets.map((n) => n.clusterCIDR) : (st?.node?.clusterCIDRs ?? []);
  f.push(...(await checkFirewall(cidrs, nodeFirewall(subnetFile), nodeUp)));

  if (st) {
    f.push(...checkDevices(st, nodeUp));
    const { links, routes } = await readState(undefined, { routes: 'default', routes6: true });
    f.push(...checkPodSubnets(st, links, routes));
    const vxlans = st.vxlans.filter((v) => v.exists);
    const offload = offloadDecision(o.cluster?.checksumOffload ?? 'auto');
    for (const v of vxlans) f.push(...(await checkVxlanDevice(v.name, familyOfDevice(v), offload, here)));
    if (o.cluster && o.node) f.push(...(await checkUnderlay(o, links, st, here)));
    f.push(...(await checkMtu(o, links, st, nodeUp, here)));
    if (o.cluster && o.node) f.push(checkPeers(st, peersSync));
    const csum = { errors: udpChecksumErrors(), rx: vxlans.length ? await rxPackets(undefined, vxlans[0]!.name) : NaN };
    if (o.probe !== false) for (const v of vxlans) f.push(...(await probePeers(o, st, v)));
    if (vxlans.length) f.push(await checkChecksumErrors(csum, vxlans[0]!.name));
    f.push(...checkReservations(o, st, here));
    f.push(
      st.leftOut.length
        ? bad(
            'nodes-left-out',
            `the agent leaves out ${st.leftOut.map((l) => leftOutMessage(l)).join('; ')}`,
            "no node routes to those nodes' pods (and their pods reach no one) until their Node objects are fixed or deleted: " +
              'kubectl describe node shows the same as a Warning Event',
          )
        : ok('nodes-left-out', 'the agent uses every Node it was given'),
    );
    if (st.networkPolicy?.policies.length) f.push(...checkPolicies(st.networkPolicy));
  }
  return { node: o.node, findings: f, problems: f.filter((x) => !x.ok).length };
}

function restartAgent(node: string | undefined): Fix {
  return {
    argv: [
      'kubectl',
      '-n',
      'kube-system',
      'delete',
      'pod',
      '-l',
      'app=podwire',
      '--field-selector',
      `spec.nodeName=${node ?? '$(hostname)'}`,
    ],
    on: 'a machine with kubectl (the agent sets this node up again when it restarts)',
  };
}

async function checkBinary(o: DoctorOptions, here: (argv: string[]) => Fix): Promise<Finding> {
  const bin = `${o.binDir}/podwire`;
  const install = [here([o.self, 'install', '--bin-dir', o.binDir])];
  if (!existsSync(bin)) {
    return bad('plugin-binary', `${bin} does not exist`, 'the runtime finds no plugin of type podwire: every ADD fails', install);
  }
  const r = await run(bin, ['--version']).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message }));
  const version = r.stdout.trim();
  return r.code === 0 && version === o.version
    ? ok('plugin-binary', `${bin} is podwire ${version}, as this one`)
    : bad(
        'plugin-binary',
        `${bin} is ${r.code === 0 ? `podwire ${version}` : 'not runnable'}, this is ${o.version}`,
        'pods are wired by another version than the one checking and syncing the node: their idea of names, rules and files may differ',
        install,
      );
}

function checkSubnetFile(o: DoctorOptions, st: NodeStatus, file: string | undefined, nodeUp: Fix[]): Finding {
  if (!file) return ok('subnet-file', 'the slice is written in the config (ipam.subnet)');
  if (!existsSync(file)) {
    return bad(
      'subnet-file',
      `the node subnet file ${file} does not exist`,
      'every ADD fails with "try again later" (11) and STATUS says the network is not ready (50): no pod starts on this node',
      nodeUp,
      true,
    );
  }
  const want = o.cluster && o.node ? selfNode(o.cluster, o.node).map((x) => x.podCIDR) : undefined;
  if (!st.slices.length) return bad('subnet-file', `${file} cannot be read as a subnet file`, 'every ADD fails', nodeUp, true);
  const have = st.slices.map((x) => x.cidr);
  if (want && have.join() !== want.join()) {
    return bad(
      'subnet-file',
      `${file} says ${have.join(', ')}, the node's podCIDR${want.length > 1 ? 's are' : ' is'} ${want.join(', ')}`,
      "new pods get addresses from another node's slice (or miss a family): the other nodes route those to that node, so " +
        'replies never come back',
      nodeUp,
      true,
    );
  }
  return ok('subnet-file', `${file}: ${have.join(', ')}${want ? `, the node's podCIDR${want.length > 1 ? 's' : ''}` : ''}`);
}

/** The pod subnets against the node's own networks (what the plugin and node up refuse; a node may have changed since). */
function checkPodSubnets(st: NodeStatus, links: Link[], routes: Route[]): Finding[] {
  const ours = [st.bridge.name, ...st.vxlans.map((v) => v.name)];
  return st.slices.map((slice) => {
    const cidr = parseCidr(slice.cidr);
    const why = cidr && subnetClash(cidr, links, routes, ours);
    return why
      ? bad(
          'pod-subnet',
          `the pod subnet ${slice.cidr} ${why}`,
          `the gateway's connected route on ${st.bridge.name} competes with the node's own: traffic of the node (or to its gateway) ` +
            "goes to the pods, and the node loses part of its network. Give the cluster a pod network apart from the nodes' (kubeadm " +
            '--pod-network-cidr) or renumber the node',
        )
      : ok('pod-subnet', `the pod subnet ${slice.cidr} is apart from every network the node is on`);
  });
}

/** The family a VXLAN device carries: from its local address. */
const familyOfDevice = (v: VxlanRow): Family => (v.local?.includes(':') ? 6 : 4);

/** The node's backend as node up recorded it in the subnet file (older files say nothing: iptables). */
function nodeFirewall(subnetFile: string | undefined): FirewallBackend {
  try {
    return (JSON.parse(readFileSync(subnetFile ?? DEFAULT_SUBNET_FILE, 'utf8')) as { firewall?: FirewallBackend }).firewall ?? 'iptables';
  } catch {
    return 'iptables';
  }
}

/** Rules of the node's backend in place, none of the other's, and nothing that drops what they accept. */
async function checkFirewall(cidrs: readonly string[], backend: FirewallBackend, nodeUp: Fix[]): Promise<Finding[]> {
  const out: Finding[] = [];
  const nets = cidrs.map((c) => ({ family: (c.includes(':') ? 6 : 4) as Family, clusterCIDR: c }));
  const hasNft = onPath('nft');
  const hasIptables = onPath('iptables');
  if (backend === 'nftables') {
    const problems = hasNft ? await nftNodeProblems(nets) : ['nft is not installed'];
    out.push(
      problems.length
        ? bad(
            'firewall',
            `nftables (the node's backend): ${problems.join('; ')}`,
            "pods' hostPorts, masquerade and forwarding rules are incomplete: hostPorts may not answer, traffic leaving the cluster network keeps Pod IPs",
            nodeUp,
            true,
          )
        : ok('firewall', `nftables: table ${NFT_TABLE} has the node's chains as node up writes them`),
    );
    for (const n of hasIptables ? nets : []) {
      const s = await forwardState(n.clusterCIDR, n.family).catch(() => undefined);
      if (s?.policy === 'DROP' && !s.ours) {
        out.push(
          bad(
            'forward-chain',
            `${n.family === 4 ? 'iptables' : 'ip6tables'}: FORWARD's policy is DROP, and podwire's rules are in nftables`,
            "nf_tables passes a packet only if every table's chain on the hook accepts it: podwire's accept cannot overrule that DROP, so routed pod traffic is dropped",
            [],
          ),
        );
      }
    }
  } else {
    for (const n of nets) out.push(await checkForward(n.clusterCIDR, n.family, nodeUp));
  }
  // Rules in the other backend too: what a switch left behind, or two configs disagreeing.
  const others =
    backend === 'nftables'
      ? hasIptables
        ? (await podwireIptablesChains(nets.map((n) => n.family))).map((c) => `iptables ${c}`)
        : []
      : hasNft && (await readTable().catch(() => undefined))
        ? [`nftables table ${NFT_TABLE}`]
        : [];
  out.push(
    others.length
      ? bad(
          'firewall-both',
          `rules of both backends on this node: the node uses ${backend}, and ${others.join(', ')} is there too`,
          'two sets of rules for the same pods: a stale one may DNAT a hostPort to an address another pod has now',
          nodeUp,
          true,
        )
      : ok('firewall-both', `only ${backend} holds podwire's rules`),
  );
  return out;
}

async function checkForward(clusterCIDR: string, family: Family, nodeUp: Fix[]): Promise<Finding> {
  const s = await forwardState(clusterCIDR, family);
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  if (s.ours)
    return ok(
      'forward-chain',
      `${tool}: FORWARD (policy ${s.policy}) sends pod traffic to PODWIRE-FORWARD after kube-proxy's rules and before any other, which accepts it`,
    );
  return s.accepted
    ? ok('forward-chain', `${tool}: FORWARD's policy ACCEPT lets pod traffic through (PODWIRE-FORWARD is missing: node up adds it)`)
    : bad(
        'forward-chain',
        `${tool}: FORWARD's policy is ${s.policy} and podwire's PODWIRE-FORWARD chain is missing or out of place (after kube-proxy's rules, before any other)`,
        'every packet a node routes for pods (to other nodes, from Services) is dropped: pods reach only pods on their own bridge',
        nodeUp,
        true,
      );
}

function checkDevices(st: NodeStatus, nodeUp: Fix[]): Finding[] {
  const out: Finding[] = [];
  const b = st.bridge;
  if (!b.exists || !b.up) {
    out.push(
      bad(
        'bridge',
        `bridge ${b.name} ${b.exists ? 'is down' : 'does not exist'}`,
        "pods' veths have nothing to join: pods are cut off",
        nodeUp,
        true,
      ),
    );
  } else out.push(ok('bridge', `${b.name} up, ${b.addresses.join(' ')}`));
  for (const v of st.vxlans) {
    if (!v.exists || !v.up) {
      out.push(
        bad(
          'vxlan-device',
          `VXLAN device ${v.name} ${v.exists ? 'is down' : 'does not exist'}`,
          'pods on other nodes are unreachable',
          nodeUp,
          true,
        ),
      );
    } else out.push(ok('vxlan-device', `${v.name} up: VNI ${v.vni}, UDP ${v.port}, local ${v.local}`));
  }
  return out;
}

async function checkVxlanDevice(
  dev: string,
  family: Family,
  decided: { on: boolean; why: string },
  here: (argv: string[]) => Fix,
): Promise<Finding[]> {
  const out: Finding[] = [];
  const rp = rpFilter(dev);
  // IPv6 has no rp_filter.
  if (family === 4)
    out.push(
      rp === 1
        ? bad(
            'rp-filter-vxlan',
            `reverse-path filtering is strict on ${dev} (rp_filter 1, on the device or "all")`,
            "a peer's own processes that send from their Node IP (hostNetwork pods, daemons bound to it) reach this node's pods " +
              'through the VXLAN device, but the route back to a Node IP leaves by the underlay: the kernel drops them as spoofed',
            [here(['sysctl', '-w', `${devSysctl(dev, 'rp_filter')}=2`])],
            true,
          )
        : ok('rp-filter-vxlan', `rp_filter on ${dev}: ${rp === 2 ? 'loose' : 'off'}`),
    );
  const offload = await txChecksum(dev);
  const state = (on: boolean) => (on ? 'on' : 'off');
  out.push(
    offload === undefined
      ? ok('checksum-offload', `TX checksum offload of ${dev}: unknown (ethtool not installed)`)
      : offload === decided.on
        ? ok('checksum-offload', `TX checksum offload of ${dev}: ${state(offload)} (${decided.why})`)
        : bad(
            'checksum-offload',
            `TX checksum offload is ${state(offload)} for ${dev}, and should be ${state(decided.on)}: ${decided.why}`,
            offload
              ? "this kernel sends VXLAN packets that kube-proxy's SNAT rewrote with a wrong checksum and peers drop them: " +
                  'connections to Services across nodes stall (the 63-second delay)'
              : "every VXLAN packet is checksummed in software: pods on other nodes get a fraction of the wire's throughput",
            [here(txChecksumSet(dev, decided.on))],
            true,
          ),
  );
  return out;
}

/** UDP packets this node dropped for a bad checksum since boot (/proc/net/snmp, Udp InCsumErrors). */
function udpChecksumErrors(): number | undefined {
  const lines = (sys().readText('/proc/net/snmp') ?? '').split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = lines.map((l) => l.split(/\s+/));
  const i = names?.indexOf('InCsumErrors') ?? -1;
  return i > 0 && values ? Number(values[i]) : undefined;
}

/**
 * The symptom of checksum offload on a kernel that needs the workaround, seen from the receiving side:
 * UDP checksum errors growing while VXLAN traffic arrives (doctor's own probes, and whatever pods send).
 */
async function checkChecksumErrors(was: { errors?: number; rx: number }, dev: string): Promise<Finding> {
  const [before, rx] = [was.errors, was.rx];
  const [after, rx2] = [udpChecksumErrors(), await rxPackets(undefined, dev)];
  if (before === undefined || after === undefined) return ok('udp-checksum-errors', 'UDP checksum errors: not counted by this kernel');
  if (after > before) {
    return bad(
      'udp-checksum-errors',
      `UDP checksum errors grew from ${before} to ${after} while doctor ran (${dev} received ${Number.isNaN(rx2 - rx) ? '?' : rx2 - rx} packets meanwhile)`,
      'packets reach this node with bad UDP checksums: typically VXLAN from a peer whose kernel (before 5.7) offloads TX ' +
        "checksums of packets kube-proxy's MASQUERADE --random-fully rewrote. On every peer, turn the offload off " +
        '(the fix below, run there), and keep it off with checksumOffload "off" in the cluster file or the agent\'s --checksum-offload off',
      [{ argv: txChecksumSet(dev, false), on: 'every peer' }],
    );
  }
  return ok('udp-checksum-errors', `UDP checksum errors: ${after} since boot, none while doctor ran`);
}

/** Strict rp_filter on the underlay drops a peer's packets when the route back to them leaves by another device. */
async function checkUnderlay(o: DoctorOptions, links: Link[], st: NodeStatus, here: (argv: string[]) => Fix): Promise<Finding[]> {
  // rp_filter is IPv4's only: IPv6 has none.
  const i = o.cluster!.nets.findIndex((n) => n.family === 4);
  if (i < 0) return [];
  const self = selfNode(o.cluster!, o.node!)[i]!;
  let dev: string;
  try {
    dev = findUnderlay(links, self).dev;
  } catch (e) {
    return [bad('underlay', (e as Error).message, 'podwire cannot tell which device carries pod traffic to other nodes')];
  }
  if (rpFilter(dev) !== 1) return [ok('rp-filter-underlay', `rp_filter on ${dev}: ${rpFilter(dev) === 2 ? 'loose' : 'off'}`)];
  const peers4 = (st.peers ?? []).filter((p) => p.family === 4);
  const back = await Promise.all(peers4.map((p) => routeGet(undefined, p.nodeIP).catch(() => undefined)));
  const asymmetric = peers4.filter((_, k) => back[k]?.dev !== undefined && back[k]!.dev !== dev);
  return [
    asymmetric.length
      ? bad(
          'rp-filter-underlay',
          `rp_filter is strict on ${dev}, and the routes back to ${asymmetric.map((p) => p.name).join(', ')} leave by another device`,
          `their packets (VXLAN or host-gw) arrive on ${dev}; strict reverse-path filtering drops them as spoofed`,
          [here(['sysctl', '-w', `${devSysctl(dev, 'rp_filter')}=2`])],
        )
      : ok('rp-filter-underlay', `rp_filter is strict on ${dev}, and every peer's route comes back through it`),
  ];
}

/**
 * MTU along the path, per family: each VXLAN device must fit its underlay minus that family's headers
 * (50 bytes over IPv4, 70 over IPv6); pods and their host veths must fit the smallest path a pod's
 * packets take (a pod has one eth0 for both families).
 */
async function checkMtu(o: DoctorOptions, links: Link[], st: NodeStatus, nodeUp: Fix[], here: (argv: string[]) => Fix): Promise<Finding[]> {
  const out: Finding[] = [];
  const underlays = o.cluster && o.node ? safeUnderlays(links, o) : [];
  const paths: number[] = [];
  for (const v of st.vxlans.filter((x) => x.exists)) {
    const fam = familyOfDevice(v);
    const u = underlays.find((x) => x.family === fam);
    const room = u ? u.mtu - VXLAN_OVERHEAD[fam] : undefined;
    if (u && room !== undefined && v.mtu! > room) {
      out.push(
        bad(
          'mtu',
          `${v.name}'s MTU ${v.mtu} does not fit ${u.dev}'s ${u.mtu} minus VXLAN's ${VXLAN_OVERHEAD[fam]} bytes over ${familyName(fam)}`,
          'full-size packets to other nodes are dropped once encapsulated: small pings work, real connections hang',
          nodeUp,
          true,
        ),
      );
    }
    if ((st.peers ?? []).some((p) => p.family === fam && p.mode === 'vxlan') || !u) paths.push(Math.min(v.mtu!, room ?? Infinity));
  }
  for (const u of underlays) paths.push(u.mtu);
  // The largest packet a pod may send: the smallest path its packets take.
  const limit = Math.min(...paths);
  if (!Number.isFinite(limit)) return out;
  const too: string[] = [];
  const fixes: Fix[] = [];
  for (const p of st.pods) {
    const veth = linkByName(links, p.hostVeth);
    if (veth && veth.mtu > limit) {
      too.push(`host veth ${p.hostVeth} ${veth.mtu}`);
      fixes.push(here(['ip', 'link', 'set', 'dev', p.hostVeth, 'mtu', String(limit)]));
    }
    if (!p.netns || p.netns.startsWith('nsid')) continue;
    const pod = (await readState(`/run/netns/${p.netns}`).catch(() => undefined))?.links;
    const eth = pod && linkByName(pod, p.ifname);
    if (eth && eth.mtu > limit) {
      too.push(`${p.ifname} of ${p.netns} (${p.ip}) ${eth.mtu}`);
      fixes.push(here(['ip', '-n', p.netns, 'link', 'set', 'dev', p.ifname, 'mtu', String(limit)]));
    }
  }
  const through = st.vxlans.filter((v) => v.exists).map((v) => v.name);
  out.push(
    too.length
      ? bad(
          'mtu',
          `MTU above the path's ${limit}: ${too.join(', ')}`,
          `a pod sends packets up to its MTU; those bigger than ${limit} are dropped on the way (at the host veth, or once ` +
            'encapsulated) without an error: small pings work, large transfers hang',
          fixes,
        )
      : ok('mtu', `pods, veths and ${through.length ? through.join(', ') : 'the underlay'} fit the path: at most ${limit} bytes`),
  );
  return out;
}

function safeUnderlays(links: Link[], o: DoctorOptions): { family: Family; dev: string; mtu: number }[] {
  return selfNode(o.cluster!, o.node!).flatMap((self, i) => {
    try {
      return [{ family: o.cluster!.nets[i]!.family, ...findUnderlay(links, self) }];
    } catch {
      return [];
    }
  });
}

function checkPeers(st: NodeStatus, peersSync: Fix[]): Finding {
  const drift = (st.peers ?? []).flatMap((p) => p.drift.map((d) => `${p.name}: ${d}`));
  const wrong = [...drift, ...st.stale.map((s) => `stale: ${s}`)];
  return wrong.length
    ? bad(
        'peers',
        `routes, neighbours or FDB entries differ from the node list: ${wrong.join('; ')}`,
        'a missing route, neighbour or FDB entry leaves pods of that node unreachable; a stale one sends their packets to a ' +
          "node that no longer has them (a node's MAC or IP changed)",
        peersSync,
        true,
      )
    : ok('peers', `${(st.peers ?? []).length} peer(s): routes, neighbours and FDB entries as the node list says`);
}

/**
 * One ping through the overlay to each VXLAN peer's VTEP address: the packet travels in UDP to that
 * peer's Node IP, and the answer shows on this node's VXLAN device. Sent only where the route to the
 * VTEP address is podwire's through the VXLAN device, so it never leaves for anywhere else.
 */
async function probePeers(o: DoctorOptions, st: NodeStatus, v: VxlanRow): Promise<Finding[]> {
  const dev = v.name;
  const peers = (st.peers ?? []).filter((p) => p.mode === 'vxlan' && p.route?.endsWith(`dev ${dev} onlink`));
  const rx = () => rxPackets(undefined, dev);
  return Promise.all(
    peers.map(async (p) => {
      const vtep = p.route!.split(' ')[1]!;
      const before = await rx();
      // An IPv6 VTEP is a link-local address: the ping must say which link.
      const via = vtep.startsWith('fe80:') ? ['-I', dev] : [];
      const r = await run('ping', ['-n', '-q', '-c', '2', '-i', '0.2', '-W', '1', ...via, vtep]).catch(() => ({ code: 1 }));
      const got = (await rx()) - before;
      const port = v.port ?? 8472;
      return r.code === 0
        ? ok('vxlan-port', `${p.name} answers through the overlay (UDP ${port} to ${p.nodeIP}; ${got} packet(s) in on ${dev})`)
        : bad(
            'vxlan-port',
            `${p.name} does not answer through the overlay: a ping to its VTEP ${vtep} (UDP ${port} to ${p.nodeIP}) got no reply`,
            `pods on ${p.name} are unreachable: something between the nodes drops UDP ${port} (a firewall, a cloud security ` +
              `group), or ${p.name}'s VXLAN device is missing or down`,
            [
              {
                argv: [
                  ...o.where(p.name),
                  p.family === 6 ? 'ip6tables' : 'iptables',
                  '-I',
                  'INPUT',
                  '-p',
                  'udp',
                  '--dport',
                  String(port),
                  '-s',
                  v.local ?? '',
                  '-j',
                  'ACCEPT',
                ],
                on: `${p.name} (and any firewall or security group between the nodes: allow UDP ${port} between Node IPs)`,
              },
            ],
          );
    }),
  );
}

function checkReservations(o: DoctorOptions, st: NodeStatus, here: (argv: string[], input?: string) => Fix): Finding[] {
  const dataDir = String(o.conf!.plugin.ipam?.dataDir ?? DEFAULT_DATA_DIR);
  const store = DiskStore.forNetwork(dataDir, o.conf!.network);
  // A reservation of an ADD in flight has no veth yet: only older ones are leaks.
  const leaked = st.pods.filter((p) => !p.vethExists && (store.provenance(p.ip)?.ageMs ?? 0) > IN_FLIGHT_MS);
  const config = JSON.stringify({ cniVersion: '1.0.0', name: o.conf!.network, ...o.conf!.plugin });
  const out: Finding[] = leaked.map((p) =>
    bad(
      'leaked-reservation',
      `${p.ip} is reserved for ${p.containerID}/${p.ifname}, whose host veth ${p.hostVeth} is gone`,
      "its pod's namespace was deleted without a DEL: the address (and any hostPort rule) is held by nobody; a full slice " +
        'reclaims it, this DEL releases it now',
      [
        here(
          [
            'env',
            'CNI_COMMAND=DEL',
            `CNI_CONTAINERID=${p.containerID}`,
            `CNI_IFNAME=${p.ifname}`,
            'CNI_NETNS=',
            `CNI_PATH=${o.binDir}`,
            o.self,
          ],
          config,
        ),
      ],
    ),
  );
  for (const v of st.strayVeths) {
    out.push(
      bad(
        'stray-veth',
        `${v} is on ${st.bridge.name} but no reservation names it`,
        'a veth left by a failed or foreign ADD: its pod (if any) has an address the IPAM may hand out again',
        [here(['ip', 'link', 'del', 'dev', v])],
      ),
    );
  }
  if (!out.length) out.push(ok('reservations', `${st.pods.length} reservation(s), each with its veth on ${st.bridge.name}`));
  return out;
}

const SHELL_SAFE = new RegExp('^[A-Za-z0-9_@%+=:,./-]+$');

/** A command line for people: arguments quoted where a shell would split or expand them. */
export function shellLine(fix: Fix): string {
  // Words a shell leaves alone stay bare; anything else goes in single quotes (a quote inside as '\'').
  const q = (a: string) => (SHELL_SAFE.test(a) ? a : "'" + a.split("'").join("'\\''") + "'");
  const line = fix.argv.map(q).join(' ');
  return fix.input === undefined ? line : `printf '%s' ${q(fix.input)} | ${line}`;
}

export function renderDoctor(r: DoctorReport): string {
  const out: string[] = [];
  for (const x of r.findings) {
    out.push(`${x.ok ? 'ok  ' : 'FAIL'} ${x.check.padEnd(18)} ${x.what}`);
    if (x.ok) continue;
    out.push(`     ${t('doctor.why')}: ${x.why}`);
    for (const fix of x.fix ?? [])
      out.push(
        `     ${t(x.safe ? 'doctor.fixSafe' : 'doctor.fix')}${fix.on ? `, ${t('doctor.on', { node: fix.on })}` : ''}: ${shellLine(fix)}`,
      );
  }
  const node = r.node ?? t('doctor.thisNode');
  out.push('', r.problems ? t('doctor.problems', { n: r.problems, node }) : t('doctor.noProblems', { node }));
  return out.join('\n') + '\n';
}

/** Applies the safe fixes (each command once, in order); returns what ran and how it ended. */
export async function applySafeFixes(r: DoctorReport): Promise<{ line: string; ok: boolean; output: string }[]> {
  const seen = new Set<string>();
  const done: { line: string; ok: boolean; output: string }[] = [];
  for (const fix of r.findings.filter((x) => !x.ok && x.safe).flatMap((x) => x.fix ?? [])) {
    const line = shellLine(fix);
    if (fix.on || seen.has(line)) continue;
    seen.add(line);
    const res = await run(fix.argv[0]!, fix.argv.slice(1), { input: fix.input }).catch((e: Error) => ({
      code: 1,
      stdout: '',
      stderr: e.message,
    }));
    done.push({ line, ok: res.code === 0, output: (res.stderr || res.stdout).trim() });
  }
  return done;
}

/** What the agent's last NetworkPolicy sync found: a policy that selects no pod, a named port no pod has, objects left out. */
function checkPolicies(r: PolicyReport): Finding[] {
  const out: Finding[] = [];
  const idle = r.policies.filter((p) => p.selectsInCluster === 0);
  out.push(
    idle.length
      ? bad(
          'policy-selects-nothing',
          `NetworkPolicy ${idle.map((p) => p.key).join(', ')} select${idle.length > 1 ? '' : 's'} no pod in the cluster`,
          "its podSelector matches no pod of its namespace (a label's spelling, or the wrong namespace): it isolates nothing and allows nothing",
        )
      : ok('policy-selects-nothing', `every NetworkPolicy selects a pod (${r.policies.length} enforced)`),
  );
  const named = r.policies.filter((p) => p.missingPorts.length);
  out.push(
    named.length
      ? bad(
          'policy-named-port',
          named.map((p) => `NetworkPolicy ${p.key}: no pod has a container port named ${p.missingPorts.join(', ')}`).join('; '),
          "a named port resolves on the destination pod's container ports: with none of that name (and protocol), the rule allows nothing",
        )
      : ok('policy-named-port', 'every named port in a policy is a container port of some pod'),
  );
  if (r.leftOut.length) {
    out.push(
      bad(
        'policy-left-out',
        r.leftOut.map((l) => `${l.kind} ${l.name}: ${l.why}`).join('; '),
        'the agent enforces every other object: these are not, until they are fixed',
      ),
    );
  }
  return out;
}
