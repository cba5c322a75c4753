// `podwire doctor`: one node checked against the ways pods stop talking that people keep reporting
// (flannel's tracker is full of them): forwarding off, br_netfilter missing, strict rp_filter, a FORWARD
// policy of DROP, an MTU too big for the overlay, VXLAN's UDP port dropped on the way, checksum offload,
// stale or missing routes/neighbours/FDB entries, the node subnet file missing or wrong, a plugin binary of
// another version, leaked reservations. Each finding says what is wrong, why pods break, and the exact
// commands that fix it; the safe ones (what `node up` and `peers sync` would do anyway) are marked so
// --fix can apply them. It reads the kernel, the CNI config and the IPAM store; the only packets it sends
// are pings through the overlay to peers' VTEP addresses, which travel to the cluster's own Node IPs.
import { existsSync } from 'node:fs';
import { type MessageId, type Msg, type Params, t } from '../i18n/index.js';
import { IN_FLIGHT_MS } from '../ipam/allocator.js';
import { DEFAULT_DATA_DIR } from '../ipam/config.js';
import { DEFAULT_SUBNET_FILE, trySubnetFile } from '../nodestate/subnet-file.js';
import { DiskStore } from '../ipam/disk-store.js';
import { type OffloadDecision, offloadDecision, txChecksum, txChecksumSet } from '../kernel/ethtool.js';
import { sys } from '../runtime/files.js';
import { forwardState, podwireIptablesChains } from '../firewall/node-iptables.js';
import type { PolicyReport } from '../nodestate/reports.js';
import { type FirewallBackend, chooseFirewall } from '../firewall/choose.js';
import { onPath } from '../kernel/tools.js';
import { NFT_TABLE, nftNodeProblems, readTable } from '../firewall/nftables.js';
import { type Link, type Route, linkByName, readState, routeGet, rxPackets } from '../kernel/state.js';
import { subnetClash } from '../kernel/guard.js';
import { familyOf, parseCidr } from '../net/ip.js';
import { devSysctl, readSysctl, rpFilter } from '../kernel/sysctl.js';
import { blindResources } from '../nodestate/api-report.js';
import { VXLAN_OVERHEAD, type Cluster, type Family, familyName, families, leftOutMessage, selfNode } from '../node/cluster.js';
import { findUnderlay } from '../node/sync.js';
import { run } from '../runtime/run.js';
import { type NodeStatus, type PodwireConf, type VxlanRow, blindWhat, nodeStatus } from './status.js';
import { GUARD_TABLE, unbindLines } from '../guard/table.js';

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
  /** What was found, and why it breaks pods: message ids and their values, put into words where printed. */
  what: Msg;
  why?: Msg;
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

// What and why stay message ids with their values; words are made where a report is printed (renderDoctor,
// doctorJson), in the learner's language (--lang).
const ok = (check: string, what: MessageId, p?: Params): Finding => ({ check, ok: true, what: { id: what, ...(p ? { p } : {}) } });
const bad = (check: string, what: MessageId, why: MessageId, p: Params, fix: Fix[] = [], safe = false): Finding => ({
  check,
  ok: false,
  what: { id: what, p },
  why: { id: why, p },
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
      bad('cni-config', 'dr.cniConfig', 'dr.cniConfig.why', { error: o.confError ?? t('dr.noConfig') }, [
        here([o.self, 'install', '--conflist', 'cni-conf/podwire-subnetfile.conflist']),
      ]),
    );
  } else {
    f.push(ok('cni-config', 'dr.cniConfig.ok', { file: o.conf.file, network: o.conf.network }));
    f.push(await checkBinary(o, here));
    st = await nodeStatus({ conf: o.conf, cluster: o.cluster, node: o.node });
    f.push(checkSubnetFile(o, st, subnetFile, nodeUp));
  }

  // Settings every pod depends on, per family.
  const fams: Family[] = o.cluster ? families(o.cluster) : st?.node ? (st.node.clusterCIDRs.map((c) => familyOf(c)) as Family[]) : [4];
  for (const fam of fams) {
    const [key, name] =
      fam === 4 ? ['net/ipv4/ip_forward', 'net.ipv4.ip_forward'] : ['net/ipv6/conf/all/forwarding', 'net.ipv6.conf.all.forwarding'];
    f.push(
      readSysctl(key) === '1'
        ? ok('ip-forward', 'dr.forward.ok', { name })
        : bad('ip-forward', 'dr.forward', 'dr.forward.why', { name, family: familyName(fam) }, [here(['sysctl', '-w', `${name}=1`])], true),
    );
  }
  const brKeys = fams.map((fam) => `net.bridge.bridge-nf-call-ip${fam === 6 ? '6' : ''}tables`);
  const brOff = brKeys.filter((k) => readSysctl(k.replace(/\./g, '/')) !== '1');
  const loaded = readSysctl('net/bridge/bridge-nf-call-iptables') !== undefined;
  f.push(
    !brOff.length
      ? ok('br-netfilter', 'dr.br.ok', { keys: brKeys.map((k) => `${k}=1`).join(', ') })
      : bad(
          'br-netfilter',
          loaded ? (brOff.length > 1 ? 'dr.brOffN' : 'dr.brOff') : 'dr.brMissing',
          'dr.br.why',
          { keys: brOff.join(t('list.and')) },
          [...(loaded ? [] : [here(['modprobe', 'br_netfilter'])]), ...brOff.map((k) => here(['sysctl', '-w', `${k}=1`]))],
          true,
        ),
  );
  const cidrs = o.cluster ? o.cluster.nets.map((n) => n.clusterCIDR) : (st?.node?.clusterCIDRs ?? []);
  f.push(...(await checkFirewall(cidrs, await nodeFirewall(subnetFile, cidrs), nodeUp)));

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
    f.push(...checkBindings(st, here));
    f.push(
      st.leftOut.length
        ? bad('nodes-left-out', 'dr.leftOut', 'dr.leftOut.why', { list: st.leftOut.map((l) => leftOutMessage(l)).join('; ') })
        : ok('nodes-left-out', 'dr.leftOut.ok'),
    );
    if (st.networkPolicy?.policies.length) f.push(...checkPolicies(st.networkPolicy));
    if (st.api) {
      const blind = blindResources(st.api);
      f.push(
        blind.length
          ? bad('agent-api', 'dr.blind', 'dr.blind.why', { server: st.api.server, since: blind[0]!.since, what: blindWhat(st.api) })
          : ok('agent-api', 'dr.blind.ok', { server: st.api.server }),
      );
    }
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
    on: t('dr.restartAgent.on'),
  };
}

async function checkBinary(o: DoctorOptions, here: (argv: string[]) => Fix): Promise<Finding> {
  const bin = `${o.binDir}/podwire`;
  const install = [here([o.self, 'install', '--bin-dir', o.binDir])];
  if (!existsSync(bin)) {
    return bad('plugin-binary', 'dr.binMissing', 'dr.binMissing.why', { bin }, install);
  }
  const r = await run(bin, ['--version']).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message }));
  const version = r.stdout.trim();
  return r.code === 0 && version === o.version
    ? ok('plugin-binary', 'dr.bin.ok', { bin, version })
    : bad('plugin-binary', r.code === 0 ? 'dr.binOther' : 'dr.binBroken', 'dr.bin.why', { bin, version, ours: o.version }, install);
}

function checkSubnetFile(o: DoctorOptions, st: NodeStatus, file: string | undefined, nodeUp: Fix[]): Finding {
  if (!file) return ok('subnet-file', 'dr.subnet.inConfig');
  if (!existsSync(file)) return bad('subnet-file', 'dr.subnetMissing', 'dr.subnetMissing.why', { file }, nodeUp, true);
  const want = o.cluster && o.node ? selfNode(o.cluster, o.node).map((x) => x.podCIDR) : undefined;
  if (!st.slices.length) return bad('subnet-file', 'dr.subnetUnreadable', 'dr.subnetUnreadable.why', { file }, nodeUp, true);
  const have = st.slices.map((x) => x.cidr).join(', ');
  const p = { file, have, want: want?.join(', ') ?? '' };
  if (want && have !== p.want) {
    return bad('subnet-file', want.length > 1 ? 'dr.subnetWrongN' : 'dr.subnetWrong', 'dr.subnetWrong.why', p, nodeUp, true);
  }
  return ok('subnet-file', want ? (want.length > 1 ? 'dr.subnet.okCidrs' : 'dr.subnet.okCidr') : 'dr.subnet.ok', p);
}

/** The pod subnets against the node's own networks (what the plugin and node up refuse; a node may have changed since). */
function checkPodSubnets(st: NodeStatus, links: Link[], routes: Route[]): Finding[] {
  const ours = [st.bridge.name, ...st.vxlans.map((v) => v.name)];
  return st.slices.map((slice) => {
    const cidr = parseCidr(slice.cidr);
    const why = cidr && subnetClash(cidr, links, routes, ours);
    return why
      ? bad('pod-subnet', 'dr.podSubnet', 'dr.podSubnet.why', { cidr: slice.cidr, clash: why, bridge: st.bridge.name })
      : ok('pod-subnet', 'dr.podSubnet.ok', { cidr: slice.cidr });
  });
}

/** The family a VXLAN device carries: from its local address. */
const familyOfDevice = (v: VxlanRow): Family => (v.local ? familyOf(v.local) : 4);

/**
 * The node's backend as the plugin finds it (firewall/choose.ts): node up's decision in the subnet file;
 * with no subnet file (removed, or never written), what node up left in the kernel — its table, or its
 * iptables chains — else what is installed.
 */
async function nodeFirewall(subnetFile: string | undefined, cidrs: readonly string[]): Promise<FirewallBackend> {
  let inKernel: FirewallBackend | undefined;
  const file = trySubnetFile(subnetFile ?? DEFAULT_SUBNET_FILE)?.firewall;
  if (!file) {
    if (onPath('nft') && (await readTable().catch(() => undefined))) inKernel = 'nftables';
    else if (onPath('iptables') && (await podwireIptablesChains(cidrs.map(familyOf)).catch(() => [])).length) inKernel = 'iptables';
  }
  return chooseFirewall(undefined, () => file ?? inKernel).backend;
}

/** Rules of the node's backend in place, none of the other's, and nothing that drops what they accept. */
async function checkFirewall(cidrs: readonly string[], backend: FirewallBackend, nodeUp: Fix[]): Promise<Finding[]> {
  const out: Finding[] = [];
  const nets = cidrs.map((c) => ({ family: familyOf(c), clusterCIDR: c }));
  const hasNft = onPath('nft');
  const hasIptables = onPath('iptables');
  if (backend === 'nftables') {
    const problems = hasNft ? await nftNodeProblems(nets) : [t('dr.nftMissing')];
    out.push(
      problems.length
        ? bad('firewall', 'dr.nft', 'dr.nft.why', { problems: problems.join('; ') }, nodeUp, true)
        : ok('firewall', 'dr.nft.ok', { table: NFT_TABLE }),
    );
    for (const n of hasIptables ? nets : []) {
      const s = await forwardState(n.clusterCIDR, n.family).catch(() => undefined);
      if (s?.policy === 'DROP' && !s.ours) {
        out.push(bad('forward-chain', 'dr.nftDrop', 'dr.nftDrop.why', { tool: n.family === 4 ? 'iptables' : 'ip6tables' }));
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
      ? bad('firewall-both', 'dr.both', 'dr.both.why', { backend, others: others.join(', ') }, nodeUp, true)
      : ok('firewall-both', 'dr.both.ok', { backend }),
  );
  return out;
}

async function checkForward(clusterCIDR: string, family: Family, nodeUp: Fix[]): Promise<Finding> {
  const s = await forwardState(clusterCIDR, family);
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const p = { tool, policy: s.policy };
  if (s.ours) return ok('forward-chain', 'dr.fwd.ok', p);
  return s.accepted ? ok('forward-chain', 'dr.fwd.accept', p) : bad('forward-chain', 'dr.fwd', 'dr.fwd.why', p, nodeUp, true);
}

function checkDevices(st: NodeStatus, nodeUp: Fix[]): Finding[] {
  const out: Finding[] = [];
  const b = st.bridge;
  if (!b.exists || !b.up) {
    out.push(bad('bridge', b.exists ? 'dr.bridgeDown' : 'dr.bridgeMissing', 'dr.bridge.why', { name: b.name }, nodeUp, true));
  } else out.push(ok('bridge', 'dr.bridge.ok', { name: b.name, addresses: b.addresses.join(' ') }));
  for (const v of st.vxlans) {
    if (!v.exists || !v.up) {
      out.push(bad('vxlan-device', v.exists ? 'dr.vxlanDown' : 'dr.vxlanMissing', 'dr.vxlan.why', { name: v.name }, nodeUp, true));
    } else out.push(ok('vxlan-device', 'dr.vxlan.ok', { name: v.name, vni: String(v.vni), port: String(v.port), local: String(v.local) }));
  }
  return out;
}

async function checkVxlanDevice(dev: string, family: Family, decided: OffloadDecision, here: (argv: string[]) => Fix): Promise<Finding[]> {
  const out: Finding[] = [];
  const rp = rpFilter(dev);
  // IPv6 has no rp_filter.
  if (family === 4)
    out.push(
      rp === 1
        ? bad(
            'rp-filter-vxlan',
            'dr.rpVxlan',
            'dr.rpVxlan.why',
            { dev },
            [here(['sysctl', '-w', `${devSysctl(dev, 'rp_filter')}=2`])],
            true,
          )
        : ok('rp-filter-vxlan', 'dr.rp.ok', { dev, state: t(rp === 2 ? 'word.loose' : 'word.off') }),
    );
  const offload = await txChecksum(dev);
  const state = (on: boolean) => t(on ? 'word.on' : 'word.off');
  const p = { dev, state: state(!!offload), want: state(decided.on), decided: t(decided.why.id, decided.why.p) };
  out.push(
    offload === undefined
      ? ok('checksum-offload', 'dr.offload.unknown', p)
      : offload === decided.on
        ? ok('checksum-offload', 'dr.offload.ok', p)
        : bad(
            'checksum-offload',
            'dr.offload',
            offload ? 'dr.offloadOn.why' : 'dr.offloadOff.why',
            p,
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
  if (before === undefined || after === undefined) return ok('udp-checksum-errors', 'dr.csum.uncounted');
  if (after > before) {
    const p = { before, after, dev, n: Number.isNaN(rx2 - rx) ? '?' : rx2 - rx };
    return bad('udp-checksum-errors', 'dr.csum', 'dr.csum.why', p, [{ argv: txChecksumSet(dev, false), on: t('dr.everyPeer') }]);
  }
  return ok('udp-checksum-errors', 'dr.csum.ok', { after });
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
    return [bad('underlay', 'dr.underlay', 'dr.underlay.why', { error: (e as Error).message })];
  }
  if (rpFilter(dev) !== 1)
    return [ok('rp-filter-underlay', 'dr.rp.ok', { dev, state: t(rpFilter(dev) === 2 ? 'word.loose' : 'word.off') })];
  const peers4 = (st.peers ?? []).filter((p) => p.family === 4);
  const back = await Promise.all(peers4.map((p) => routeGet(undefined, p.nodeIP).catch(() => undefined)));
  const asymmetric = peers4.filter((_, k) => back[k]?.dev !== undefined && back[k]!.dev !== dev);
  return [
    asymmetric.length
      ? bad('rp-filter-underlay', 'dr.rpUnderlay', 'dr.rpUnderlay.why', { dev, peers: asymmetric.map((p) => p.name).join(', ') }, [
          here(['sysctl', '-w', `${devSysctl(dev, 'rp_filter')}=2`]),
        ])
      : ok('rp-filter-underlay', 'dr.rpUnderlay.ok', { dev }),
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
      const p = { name: v.name, mtu: v.mtu!, dev: u.dev, underlay: u.mtu, overhead: VXLAN_OVERHEAD[fam], family: familyName(fam) };
      out.push(bad('mtu', 'dr.mtuVxlan', 'dr.mtuVxlan.why', p, nodeUp, true));
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
      too.push(t('dr.mtu.veth', { veth: p.hostVeth, mtu: veth.mtu }));
      fixes.push(here(['ip', 'link', 'set', 'dev', p.hostVeth, 'mtu', String(limit)]));
    }
    if (!p.netns || p.netns.startsWith('nsid')) continue;
    const pod = (await readState(`/run/netns/${p.netns}`).catch(() => undefined))?.links;
    const eth = pod && linkByName(pod, p.ifname);
    if (eth && eth.mtu > limit) {
      too.push(t('dr.mtu.pod', { ifname: p.ifname, netns: p.netns, ip: p.ip, mtu: eth.mtu }));
      fixes.push(here(['ip', '-n', p.netns, 'link', 'set', 'dev', p.ifname, 'mtu', String(limit)]));
    }
  }
  const through = st.vxlans.filter((v) => v.exists).map((v) => v.name);
  out.push(
    too.length
      ? bad('mtu', 'dr.mtu', 'dr.mtu.why', { limit, list: too.join(t('list.sep')) }, fixes)
      : ok('mtu', 'dr.mtu.ok', { limit, through: through.length ? through.join(', ') : t('dr.theUnderlay') }),
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
  const wrong = [...drift, ...st.stale.map((s) => t('st.p.stale', { what: s }))];
  return wrong.length
    ? bad('peers', 'dr.peers', 'dr.peers.why', { wrong: wrong.join('; ') }, peersSync, true)
    : ok('peers', 'dr.peers.ok', { n: (st.peers ?? []).length });
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
      const said = { peer: p.name, port, nodeIP: p.nodeIP, got, dev, vtep };
      return r.code === 0
        ? ok('vxlan-port', 'dr.probe.ok', said)
        : bad('vxlan-port', 'dr.probe', 'dr.probe.why', said, [
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
              on: t('dr.probe.on', said),
            },
          ]);
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
    bad('leaked-reservation', 'dr.leak', 'dr.leak.why', { ip: p.ip, containerID: p.containerID, ifname: p.ifname, veth: p.hostVeth }, [
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
    ]),
  );
  for (const v of st.strayVeths) {
    out.push(bad('stray-veth', 'dr.stray', 'dr.stray.why', { veth: v, bridge: st.bridge.name }, [here(['ip', 'link', 'del', 'dev', v])]));
  }
  if (!out.length) out.push(ok('reservations', 'dr.reservations.ok', { n: st.pods.length, bridge: st.bridge.name }));
  return out;
}

/**
 * The spoofing checks' bindings: a pod without one sends unchecked; a binding whose port is gone is left
 * over (what GC removes: removing it is safe).
 */
function checkBindings(st: NodeStatus, here: (argv: string[], input?: string) => Fix): Finding[] {
  const sc = st.spoofChecks;
  if (!sc.on) return [ok('spoof-bindings', 'dr.bindings.off', { network: st.network })];
  if (!sc.table) return [bad('spoof-bindings', 'dr.noGuard', 'dr.noGuard.why', { table: GUARD_TABLE })];
  const out: Finding[] = st.pods
    .filter((p) => p.bound === false)
    .map((p) => bad('spoof-binding', 'dr.unbound', 'dr.unbound.why', { ip: p.ip, veth: p.hostVeth, containerID: p.containerID }));
  if (sc.stale.length)
    out.push(
      bad(
        'stale-binding',
        'dr.staleBinding',
        'dr.staleBinding.why',
        { ports: sc.stale.map((b) => `${b.port} (${b.ips.join(', ')})`).join(', '), table: GUARD_TABLE },
        [here(['nft', '-f', '-'], unbindLines(sc.stale).join('\n') + '\n')],
        true,
      ),
    );
  if (!out.length) out.push(ok('spoof-bindings', 'dr.bindings.ok', { n: sc.bound, table: GUARD_TABLE }));
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

const words = (m: Msg | undefined): string => (m ? t(m.id, m.p) : '');

/** A finding as `doctor --json` prints it: its ids and values for programs, and their words for people. */
export interface FindingJson extends Omit<Finding, 'what' | 'why'> {
  id: MessageId;
  p?: Params;
  what: string;
  whyId?: MessageId;
  why?: string;
}
export interface DoctorJson extends Omit<DoctorReport, 'findings'> {
  findings: FindingJson[];
}

export function doctorJson(r: DoctorReport): DoctorJson {
  return {
    ...r,
    findings: r.findings.map(({ what, why, ...f }) => ({
      ...f,
      id: what.id,
      ...(what.p ? { p: what.p } : {}),
      what: words(what),
      ...(why ? { whyId: why.id, why: words(why) } : {}),
    })),
  };
}

export function renderDoctor(r: DoctorReport): string {
  const out: string[] = [];
  for (const x of r.findings) {
    out.push(`${x.ok ? 'ok  ' : 'FAIL'} ${x.check.padEnd(18)} ${words(x.what)}`);
    if (x.ok) continue;
    out.push(`     ${t('doctor.why')}: ${words(x.why)}`);
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
      ? bad('policy-selects-nothing', idle.length > 1 ? 'dr.idleN' : 'dr.idle', 'dr.idle.why', { keys: idle.map((p) => p.key).join(', ') })
      : ok('policy-selects-nothing', 'dr.idle.ok', { n: r.policies.length }),
  );
  const named = r.policies.filter((p) => p.missingPorts.length);
  out.push(
    named.length
      ? bad('policy-named-port', 'dr.namedPort', 'dr.namedPort.why', {
          list: named.map((p) => t('dr.namedPort.one', { key: p.key, ports: p.missingPorts.join(', ') })).join('; '),
        })
      : ok('policy-named-port', 'dr.namedPort.ok'),
  );
  if (r.leftOut.length) {
    out.push(
      bad('policy-left-out', 'dr.policyLeftOut', 'dr.policyLeftOut.why', {
        list: r.leftOut.map((l) => t('dr.policyLeftOut.one', { kind: l.kind, name: l.name, why: l.why })).join('; '),
      }),
    );
  }
  return out;
}
