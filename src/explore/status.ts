// `podwire status`: this node as the kernel and the IPAM store have it. The slice and how full it is, the
// bridge and the VXLAN device, every reserved Pod IP with its owner, host veth and pod namespace (a
// reservation without its veth is a leak: the pod's namespace went without a DEL), and the peers with
// their routes, FDB and neighbour entries compared with what the cluster file asks for (drift).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniError } from '../cni/errors.js';
import { parseIpamConfig, DEFAULT_DATA_DIR } from '../ipam/config.js';
import { usage } from '../ipam/allocator.js';
import { DiskStore, type ReclaimLog } from '../ipam/disk-store.js';
import { cidrContains, familyOf, formatCidr, formatIP, joinHostPort, parseCidr, parseIP } from '../net/ip.js';
import { attachmentNames } from '../kernel/names.js';
import { type PodRules } from '../firewall/backend.js';
import { onPath } from '../kernel/tools.js';
import { podRulesFromSave, saveNat } from '../nat/chains.js';
import { readTable } from '../firewall/nftables.js';
import { type Cluster, type LeftOut, type Net, leftOutMessage, nodeIn, selfNode, usesVxlan } from '../node/cluster.js';
import { type PolicyReport, readLeftOut, readPolicyReport } from '../nodestate/reports.js';
import { type PeerDiff, desiredState, diffPeers, peersOf } from '../node/peers.js';
import { findUnderlay, kernelPeers } from '../node/sync.js';
import { table } from '../i18n/table.js';
import { t } from '../i18n/index.js';
import { type ApiReport, blindResources, readApiReport } from '../nodestate/api-report.js';
import { DEFAULT_BRIDGE, PLUGIN_TYPE } from '../plugin/config.js';
import { ipAddrs, isUp, kind, linkByName } from '../kernel/state.js';
import { type NsView, peerNs, peerPaths, readNs } from './view.js';
import { type Binding, GUARD_TABLE, GUARD_TABLE_NAME, bindingsOf } from '../guard/table.js';
import { listNftTable } from '../kernel/nft-json.js';

export const CNI_CONF_DIR = '/etc/cni/net.d';

export interface PodwireConf {
  /** The file it came from. */
  file: string;
  network: string;
  plugin: Record<string, any>;
}

/** The podwire plugin's config from a .conflist/.conf file; undefined when the file has none. */
export function podwireConf(file: string): PodwireConf | undefined {
  const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
  const plugins: Record<string, any>[] = Array.isArray(json.plugins) ? json.plugins : [json];
  const plugin = plugins.find((p) => p?.type === PLUGIN_TYPE);
  return plugin && typeof json.name === 'string' ? { file, network: json.name, plugin } : undefined;
}

/** The config a runtime would use: the first file (by name, as libcni sorts) in dir with a podwire plugin. */
export function findPodwireConf(dir = CNI_CONF_DIR): PodwireConf {
  let names: string[] = [];
  try {
    names = readdirSync(dir)
      .filter((n) => /\.(conflist|conf|json)$/.test(n))
      .sort();
  } catch {
    // no such directory: the error below says what to do
  }
  for (const n of names) {
    try {
      const c = podwireConf(join(dir, n));
      if (c) return c;
    } catch {
      // not JSON: a runtime would skip it too
    }
  }
  throw new Error(`no network config with a podwire plugin in ${dir} (give one with --conflist)`);
}

export interface PodRow {
  ip: string;
  containerID: string;
  ifname: string;
  hostVeth: string;
  vethExists: boolean;
  onBridge: boolean;
  /** The pod's namespace (from the veth's other end): its /run/netns name, "nsid N", or undefined when gone. */
  netns?: string;
  ok: boolean;
  problem?: string;
  /** Its hostPorts as the node's firewall holds them ("8080/tcp -> 80", "192.168.50.11:53/udp -> 53"), and where. */
  hostPorts: string[];
  firewall?: 'nftables' | 'iptables';
  /** Bound to its port by the spoofing checks (its address among its port's): undefined when the checks are off or it has no veth. */
  bound?: boolean;
}

/** The spoofing checks (guard/table.ts) on this node for this network. */
export interface SpoofChecks {
  /** The network's config asks for them (spoofChecks, default true). */
  on: boolean;
  /** The table is in the kernel. */
  table: boolean;
  /** Ports bound. */
  bound: number;
  /** Bindings whose port is gone and whose addresses no reservation holds (what a GC removes). */
  stale: Binding[];
}

export interface PeerRow {
  name: string;
  family: 4 | 6;
  nodeIP: string;
  podCIDR: string;
  mode: string;
  route?: string;
  neighbour?: string;
  fdb: string[];
  drift: string[];
}

export interface NodeStatus {
  conflist: string;
  network: string;
  node?: { name: string; nodeIPs: string[]; podCIDRs: string[]; clusterCIDRs: string[]; backend: string };
  /** The node's slices (one per family on a dual-stack node); empty when the config cannot be read. */
  slices: SliceRow[];
  bridge: { name: string; exists: boolean; up: boolean; addresses: string[]; mtu?: number; mac?: string; ports: number };
  /** The VXLAN devices, one per family (the cluster file's; without one, podwire's that exist). */
  vxlans: VxlanRow[];
  pods: PodRow[];
  spoofChecks: SpoofChecks;
  /** Veths on the bridge that no reservation explains. */
  strayVeths: string[];
  peers?: PeerRow[];
  /** podwire's entries that belong to no node in the cluster file. */
  stale: string[];
  /** Stale reservations reclaimed when the slice was full (earlier boots, pods gone without DEL). */
  reclaimed: ReclaimLog;
  /** Nodes the agent leaves out of every sync (their Node objects cannot be used), as it last wrote them. */
  leftOut: LeftOut[];
  /** The NetworkPolicies the agent enforces on this node (its last report), when it enforces any. */
  networkPolicy?: PolicyReport;
  /** Whether the agent follows the API server, as it last wrote it (no agent here: absent). */
  api?: ApiReport;
  problems: string[];
}

export interface SliceRow {
  cidr: string;
  gateway: string;
  first: string;
  last: string;
  size: number;
  used: number;
  free: number;
  percent: number;
  from: string;
}

export interface VxlanRow {
  name: string;
  exists: boolean;
  up: boolean;
  vni?: number;
  local?: string;
  port?: number;
  mac?: string;
  mtu?: number;
}

export interface StatusOptions {
  conf: PodwireConf;
  cluster?: Cluster;
  node?: string;
}

/** The subnet file the config names, when it names one: the node's state directory is beside it. */
/** { key: value } when there is a value, else nothing (optional fields stay absent in --json). */
const present = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } =>
  v === undefined ? {} : ({ [k]: v } as { [P in K]?: V });

export const subnetFileOf = (conf: PodwireConf): string | undefined => {
  const f = (conf.plugin.ipam as Record<string, unknown> | undefined)?.subnetFile;
  return typeof f === 'string' ? f : undefined;
};

/** The resources the agent does not follow, in one line: "nodes: connection refused; pods: HTTP 500". */
export const blindWhat = (r: ApiReport | undefined): string =>
  blindResources(r)
    .map((b) => `${b.resource}: ${b.cause || '?'}`)
    .join('; ');

function slices(o: StatusOptions, taken: Map<string, unknown>, problems: string[]): SliceRow[] {
  const ipam = o.conf.plugin.ipam as Record<string, unknown> | undefined;
  try {
    return parseIpamConfig(ipam).pools.map((pool) => {
      const u = usage(pool, taken.keys());
      const [size, used] = [Number(u.size), Number(u.used)];
      const f = pool.subnet.family;
      return {
        cidr: formatCidr(pool.subnet),
        gateway: formatIP(pool.gateway),
        first: formatIP({ family: f, value: pool.start }),
        last: formatIP({ family: f, value: pool.end }),
        size,
        used,
        free: size - used,
        percent: Math.round((used / size) * 1000) / 10,
        from: ipam?.subnetFile ? String(ipam.subnetFile) : t('st.fromConfig'),
      };
    });
  } catch (e) {
    problems.push(t('st.p.slice', { error: (e as CniError).message }));
    return [];
  }
}

function vxlanRow(v: NsView, name: string): VxlanRow {
  const l = linkByName(v.links, name);
  if (!l || kind(l) !== 'vxlan') return { name, exists: false, up: false };
  const d = l.linkinfo?.info_data ?? {};
  return {
    name: l.ifname,
    exists: true,
    up: isUp(l),
    vni: d.id as number,
    local: (d.local ?? d.local6) as string,
    port: d.port as number,
    mac: l.address,
    mtu: l.mtu,
  };
}

/** The cluster file's VXLAN devices, or without one, podwire's that exist. */
function vxlansOf(v: NsView, c: Cluster | undefined): VxlanRow[] {
  if (c) return usesVxlan(c) ? c.nets.map((n) => vxlanRow(v, n.device)) : [];
  return v.links.filter((l) => kind(l) === 'vxlan' && l.ifname.startsWith('podwire')).map((l) => vxlanRow(v, l.ifname));
}

/** Per peer and family, what its entries are and how they differ from what the cluster file asks for. */
function peerRows(view: NsView, c: Cluster, nodeName: string, problems: string[], stale: string[]): PeerRow[] {
  return c.nets.flatMap((net) => familyPeerRows(view, c, net, nodeName, problems, stale));
}

function familyPeerRows(view: NsView, c: Cluster, net: Net, nodeName: string, problems: string[], stale: string[]): PeerRow[] {
  const self = nodeIn(net, nodeName);
  // What `peers sync` would read, from what status has read already.
  const k = kernelPeers(net.device, view, net.family);
  const underlay = findUnderlay(k.links, self);
  const peers = peersOf(c.backend, net, self, underlay);
  const d: PeerDiff = diffPeers(k.ours, desiredState(peers, underlay, net.device), k.foreign);
  const rows = peers.map(({ node, mode }): PeerRow => {
    const route = k.ours.routes.find((r) => r.dst === node.podCIDR);
    const neigh = k.ours.neighs.find((n) => n.ip === node.vtepIP);
    const drift = [
      ...d.routeSet
        .filter((r) => r.dst === node.podCIDR)
        .map((r) => (route ? t('drift.route', { via: r.via, dev: r.dev }) : t('drift.noRoute', { dst: r.dst }))),
      ...d.conflicts.filter((r) => r.dst === node.podCIDR).map((r) => t('drift.foreign', { dst: r.dst })),
      ...(mode === 'vxlan'
        ? [
            ...d.neighSet
              .filter((n) => n.ip === node.vtepIP)
              .map((n) => (neigh ? t('drift.neigh', { ip: n.ip, mac: n.mac }) : t('drift.noNeigh', { ip: n.ip }))),
            ...d.fdbSet.filter((f) => f.mac === node.vtepMac).map((f) => t('drift.noFdb', { mac: f.mac, dst: f.dst })),
          ]
        : []),
      ...d.fdbDel.filter((f) => f.mac === node.vtepMac).map((f) => t('drift.staleFdb', { mac: f.mac, dst: f.dst })),
    ];
    return {
      name: node.name,
      family: net.family,
      nodeIP: node.nodeIP,
      podCIDR: node.podCIDR,
      mode,
      route: route && `via ${route.via} dev ${route.dev}${route.onlink ? ' onlink' : ''}`,
      neighbour: neigh && `${neigh.ip} -> ${neigh.mac}`,
      fdb: k.ours.fdb.filter((f) => f.mac === node.vtepMac).map((f) => `${f.mac} -> ${f.dst}`),
      drift,
    };
  });
  const known = new Set(peers.flatMap((p) => [p.node.podCIDR, p.node.vtepIP, p.node.vtepMac]));
  stale.push(
    ...d.routeDel.filter((r) => !known.has(r.dst)).map((r) => t('stale.route', { dst: r.dst, via: r.via })),
    ...d.neighDel.filter((n) => !known.has(n.ip)).map((n) => t('stale.neigh', { ip: n.ip, mac: n.mac })),
    ...d.fdbDel.filter((f) => !known.has(f.mac)).map((f) => t('stale.fdb', { mac: f.mac, dst: f.dst })),
  );
  for (const r of rows) for (const x of r.drift) problems.push(t('st.p.peer', { name: r.name, drift: x }));
  for (const x of stale) problems.push(t('st.p.stale', { what: x }));
  return rows;
}

export async function nodeStatus(o: StatusOptions): Promise<NodeStatus> {
  const problems: string[] = [];
  const { plugin, network } = o.conf;
  const [view, rules, guard] = await Promise.all([
    readNs(),
    firewallRules(),
    onPath('nft') ? listNftTable('bridge', GUARD_TABLE_NAME) : Promise.resolve(undefined),
  ]);
  const bindings = bindingsOf(guard);
  const spoof: SpoofChecks = { on: plugin.spoofChecks !== false && onPath('nft'), table: !!guard, bound: bindings.length, stale: [] };
  const canon = (ip: string) => formatIP(parseIP(ip)!);
  const bridgeName = String(plugin.bridge ?? DEFAULT_BRIDGE);
  const dataDir = String((plugin.ipam as Record<string, unknown> | undefined)?.dataDir ?? DEFAULT_DATA_DIR);
  // Read only: `false` leaves any temp file to its writer, so status never disturbs an ADD in flight.
  const store = DiskStore.forNetwork(dataDir, network);
  const taken = store.list(false);

  const br = linkByName(view.links, bridgeName);
  const ports = view.links.filter((l) => l.master === bridgeName);
  if (!br) problems.push(t('st.p.noBridge', { bridge: bridgeName }));
  else if (!isUp(br)) problems.push(t('st.p.bridgeDown', { bridge: bridgeName }));

  const pods = [...taken]
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([ip, owner]): PodRow => {
      const { hostVeth } = attachmentNames(network, owner.containerID, owner.ifname);
      const l = linkByName(view.links, hostVeth);
      const row: PodRow = {
        ip,
        ...owner,
        hostVeth,
        vethExists: !!l,
        onBridge: l?.master === bridgeName,
        netns: l && peerNs(view, l),
        ok: true,
        hostPorts: [],
      };
      const owner2 = attachmentNames(network, owner.containerID, owner.ifname).owner;
      for (const [fw, list] of rules) {
        for (const r of list.filter((x) => x.owner === owner2)) {
          row.firewall = fw;
          for (const m of r.mappings) {
            const host = m.hostIP ? `${joinHostPort(m.hostIP, '')}` : '';
            const text = `${host}${m.hostPort}/${m.protocol} -> ${m.containerPort}`;
            if (!row.hostPorts.includes(text)) row.hostPorts.push(text);
          }
        }
      }
      if (l && spoof.on && spoof.table) {
        row.bound = bindings.some((b) => b.port === hostVeth && b.ips.some((x) => canon(x) === canon(ip)));
      }
      if (!l) row.problem = t('st.p.leaked');
      else if (!row.onBridge) row.problem = t('st.p.offBridge', { bridge: bridgeName });
      else if (!row.netns) row.problem = t('st.p.noPeer');
      else if (row.bound === false) row.problem = t('st.p.unbound', { veth: hostVeth });
      row.ok = !row.problem;
      if (row.problem) problems.push(t('st.p.pod', { ip, containerID: owner.containerID, ifname: owner.ifname, problem: row.problem }));
      return row;
    });
  // A binding whose port is gone is left over only when no reservation holds its addresses: one that
  // does is an ADD in flight (bound before its veth exists) or a leak, whose DEL removes the binding too.
  spoof.stale = bindings.filter((b) => !linkByName(view.links, b.port) && !b.ips.some((ip) => taken.has(canon(ip))));
  for (const b of spoof.stale) problems.push(t('st.p.staleBinding', { port: b.port, ips: b.ips.join(', '), table: GUARD_TABLE }));
  if (spoof.on && !spoof.table) problems.push(t('st.p.noGuard', { table: GUARD_TABLE }));
  const explained = new Set(pods.map((p) => p.hostVeth));
  const strayVeths = ports.filter((l) => kind(l) === 'veth' && !explained.has(l.ifname)).map((l) => l.ifname);
  for (const v of strayVeths) problems.push(t('st.p.stray', { veth: v, bridge: bridgeName, network }));

  const st: NodeStatus = {
    conflist: o.conf.file,
    network,
    slices: slices(o, taken, problems),
    bridge: { name: bridgeName, exists: !!br, up: isUp(br), addresses: ipAddrs(br), mtu: br?.mtu, mac: br?.address, ports: ports.length },
    vxlans: vxlansOf(view, o.cluster),
    pods,
    spoofChecks: spoof,
    strayVeths,
    stale: [],
    reclaimed: store.reclaims(),
    leftOut: readLeftOut(subnetFileOf(o.conf)),
    ...present('networkPolicy', readPolicyReport(subnetFileOf(o.conf))),
    ...present('api', readApiReport(subnetFileOf(o.conf))),
    problems,
  };
  for (const l of st.leftOut) problems.push(t('st.p.leftOut', { what: leftOutMessage(l) }));
  const blind = blindResources(st.api);
  if (blind.length) problems.push(t('st.p.blind', { since: blind[0]!.since, what: blindWhat(st.api) }));
  if (st.slices.length) {
    for (const p of pods)
      if (!st.slices.some((x) => cidrContains(parseCidr(x.cidr)!, parseIP(p.ip)!)))
        problems.push(
          t(st.slices.length > 1 ? 'st.p.outsideN' : 'st.p.outside', { ip: p.ip, slices: st.slices.map((x) => x.cidr).join(', ') }),
        );
  }
  for (const v of st.vxlans) if (!v.exists) problems.push(t('st.p.noVxlan', { name: v.name }));
  if (o.cluster && o.node) {
    const selfs = selfNode(o.cluster, o.node);
    st.node = {
      name: o.node,
      nodeIPs: selfs.map((x) => x.nodeIP),
      podCIDRs: selfs.map((x) => x.podCIDR),
      clusterCIDRs: o.cluster.nets.map((n) => n.clusterCIDR),
      backend: o.cluster.backend,
    };
    for (const x of st.slices)
      if (!st.node.podCIDRs.includes(x.cidr))
        problems.push(t('st.p.notPodCIDR', { cidr: x.cidr, podCIDRs: st.node.podCIDRs.join(t('st.or')) }));
    st.peers = peerRows(view, o.cluster, o.node, problems, st.stale);
  } else {
    // No cluster file: podwire's own routes, without a desired state to compare them with.
    st.peers = peerPaths(view).map(({ route: r, mode, mac, nodeIP }) => ({
      name: '?',
      family: familyOf(r.dst),
      nodeIP: nodeIP ?? '?',
      podCIDR: r.dst,
      mode,
      route: `via ${r.gateway} dev ${r.dev}`,
      neighbour: mac && `${r.gateway} -> ${mac}`,
      fdb: mode === 'vxlan' && mac && nodeIP ? [`${mac} -> ${nodeIP}`] : [],
      drift: [],
    }));
  }
  return st;
}

const yes = (b: boolean): string => t(b ? 'st.yes' : 'st.no');
/** A count for people: an IPv6 slice's is a power of two too large to write out. */
const count = (n: number): string => (n > Number.MAX_SAFE_INTEGER ? `~2^${Math.round(Math.log2(n))}` : String(n));

/** The status as text: a header, the node's devices, a table of pods, a table of peers, the problems. */
export function renderStatus(st: NodeStatus): string {
  const out: string[] = [];
  const n = st.node;
  out.push(
    n
      ? t('status.node', {
          name: n.name,
          ips: n.nodeIPs.join(', '),
          podCIDRs: n.podCIDRs.join(', '),
          clusters: n.clusterCIDRs.join(', '),
          backend: n.backend,
        })
      : t('status.noCluster'),
    t('status.network', { network: st.network, file: st.conflist }),
    '',
  );
  for (const s of st.slices)
    out.push(
      t('status.slice', {
        cidr: s.cidr,
        used: s.used,
        size: count(s.size),
        percent: s.percent,
        free: count(s.free),
        first: s.first,
        last: s.last,
        gateway: s.gateway,
        from: s.from,
      }),
    );
  if (!st.slices.length) out.push(t('st.sliceUnknown'));
  const b = st.bridge;
  const state = (up: boolean) => t(up ? 'st.up' : 'st.down');
  const bridge = {
    name: b.name,
    state: state(b.up),
    addresses: b.addresses.join(' ') || t('st.noAddress'),
    mtu: String(b.mtu),
    mac: String(b.mac),
    ports: b.ports,
  };
  out.push(t(b.exists ? 'st.bridge' : 'st.bridgeMissing', bridge));
  const rc = st.reclaimed;
  if (rc.count) {
    const last = rc.last.at(-1)!;
    out.push(t('st.reclaim', { n: rc.count, ip: last.ip, containerID: last.owner.containerID, at: last.at, why: last.why }));
  }
  for (const v of st.vxlans) {
    const p = {
      name: v.name,
      state: state(v.up),
      vni: String(v.vni),
      local: String(v.local),
      port: String(v.port),
      mac: String(v.mac),
      mtu: String(v.mtu),
    };
    out.push(t(v.exists ? 'st.vxlan' : 'st.vxlanMissing', p));
  }
  const sc = st.spoofChecks;
  out.push(
    !sc.on
      ? t('st.guard.off', { network: st.network })
      : sc.table
        ? t('st.guard.on', { table: GUARD_TABLE, bound: sc.bound })
        : t('st.guard.noTable', { table: GUARD_TABLE }),
  );
  out.push('');
  out.push(
    st.pods.length
      ? table(
          [
            t('col.podIP'),
            t('col.containerID'),
            'ifname',
            t('col.hostVeth'),
            t('col.onBridge', { bridge: b.name }),
            t('col.podNetns'),
            t('col.hostPorts'),
            t('col.bound'),
            t('col.state'),
          ],
          st.pods.map((p) => [
            p.ip,
            p.containerID,
            p.ifname,
            p.vethExists ? p.hostVeth : t('st.gone', { veth: p.hostVeth }),
            yes(p.onBridge),
            p.netns ?? '-',
            p.hostPorts.length ? `${p.hostPorts.join(', ')} (${p.firewall})` : '-',
            p.bound === undefined ? '-' : yes(p.bound),
            p.problem ?? t('st.ok'),
          ]),
        )
      : t('status.noPod'),
  );
  if (st.peers?.length) {
    out.push('');
    out.push(
      table(
        [t('col.peer'), t('col.nodeIP'), 'podCIDR', t('col.backend'), t('col.kernelRoute'), t('col.neigh'), 'FDB', t('col.drift')],
        st.peers.map((p) => [
          p.name,
          p.nodeIP,
          p.podCIDR,
          p.mode,
          p.route ?? t('st.missing'),
          p.neighbour ?? '-',
          p.fdb.join(', ') || '-',
          p.drift.join('; ') || (st.node ? t('st.inSync') : '?'),
        ]),
      ),
    );
  }
  if (st.networkPolicy?.policies.length) {
    const np = st.networkPolicy;
    out.push('');
    out.push(t('st.policies', { n: np.policies.length, rules: np.rules }));
    out.push(
      table(
        ['NetworkPolicy', t('col.types'), t('col.selectsHere'), t('col.inCluster'), t('col.rules')],
        np.policies.map((p) => [p.key, p.types.join('+'), p.selects, p.selectsInCluster, p.rules]),
      ),
    );
  }
  if (st.leftOut.length) {
    out.push('');
    out.push(
      table(
        [t('col.leftOut'), t('col.field'), t('col.why')],
        st.leftOut.map((l) => [l.name, l.field, l.why]),
      ),
    );
  }
  out.push('');
  out.push(
    st.problems.length
      ? `${t('status.problems', { n: st.problems.length })}\n${st.problems.map((p) => `  - ${p}`).join('\n')}`
      : t('status.noProblems'),
  );
  return out.join('\n') + '\n';
}

/** Every attachment's hostPort and masquerade rules, from each backend that is installed (both, after a switch gone wrong). */
async function firewallRules(): Promise<[fw: 'nftables' | 'iptables', rules: PodRules[]][]> {
  const out: [fw: 'nftables' | 'iptables', rules: PodRules[]][] = [];
  if (onPath('nft')) out.push(['nftables', (await readTable().catch(() => undefined))?.pods ?? []]);
  if (onPath('iptables')) {
    const saved = await Promise.all([false, true].map((v6) => saveNat(v6).catch(() => [] as string[])));
    out.push(['iptables', saved.flatMap((x) => podRulesFromSave(x))]);
  }
  return out;
}
