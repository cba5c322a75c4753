// `podwire node up` / `node down`: everything a node needs before pods and peers, read from the kernel
// first and changed only where it differs, so running `up` twice changes nothing:
//   sysctls    ip_forward; br_netfilter + bridge-nf-call-iptables (Services to a pod on the same bridge)
//   bridge     cni0 with the slice's gateway address, MAC derived from it, pod MTU
//   vxlan      (vxlan/auto) the VTEP: VNI, local Node IP, port, nolearning, derived MAC, podCIDR's network
//              address /32, MTU = underlay - 50; loose rp_filter where it was strict, TX checksum
//              offload on or off by the kernel (see tuneVxlan)
//   firewall   nftables: table inet podwire's node chains (firewall/nftables.ts); iptables: PODWIRE-FORWARD
//              and PODWIRE-POSTROUTING (firewall/node-iptables.ts). `auto` picks (firewall/choose.ts); a node that
//              switched has its pods' rules moved over and nothing of the other left (firewall/migrate.ts)
//   file       the node subnet file the plugin's IPAM reads ({podCIDR, clusterCIDR, mtu})
// `down` removes what `up` made: our routes, the VXLAN device (and with it every FDB and neighbour entry),
// the bridge unless pods are still attached to it, the chains and the subnet file. Sysctls stay: they are
// settings other software relies on too, not objects podwire owns.
import { t } from '../i18n/index.js';
import { existsSync, rmSync } from 'node:fs';
import { DEFAULT_SUBNET_FILE, type SubnetFile, writeSubnetFile } from '../nodestate/subnet-file.js';
import { ensureNodeRules, removeNodeRules } from '../firewall/node-iptables.js';
import { release } from 'node:os';
import { type FirewallFacts, chooseFirewall } from '../firewall/choose.js';
import { installed, onPath } from '../kernel/tools.js';
import { iptablesCmd } from '../firewall/iptables.js';
import { iptablesToNftables, nftablesToIptables } from '../firewall/migrate.js';
import { ensureNftNode, removeNftNode } from '../firewall/nftables.js';
import { addrLine, bridgeMac } from '../kernel/links.js';
import { ipBatch } from '../kernel/run.js';
import { type Link, type Route, addrsOf, isUp, readState, v4Addrs } from '../kernel/state.js';
import { subnetClash } from '../kernel/guard.js';
import { devSysctl, ensureSysctl, readSysctl, rpFilter } from '../kernel/sysctl.js';
import { GUARD_TABLE, guardApply } from '../guard/table.js';
import { VXLAN_TABLE, removeVxlanTable, writeVxlanTable } from '../guard/vxlan.js';
import { type OffloadDecision, offloadDecision, setTxChecksum, txChecksum } from '../kernel/ethtool.js';
import { run } from '../runtime/run.js';
import { log } from '../runtime/log.js';
import { cidrContains, parseCidr, parseIP } from '../net/ip.js';
import {
  type Cluster,
  type Family,
  type NodeEntry,
  VXLAN_OVERHEAD,
  familyName,
  families,
  gatewayCidr,
  selfNode,
  usesVxlan,
} from './cluster.js';
import type { Underlay } from './peers.js';
import { findUnderlay } from './sync.js';
import { ROUTE_PROTO } from './peers.js';

export interface NodeReport {
  /** One line per thing created, changed or removed; empty when the node was already as asked. */
  changes: string[];
  warnings: string[];
  /** What was decided and why, said on every run (TX checksum offload). */
  notes?: string[];
}

/** A family's underlay: the link holding the Node IP of that family. */
type Underlays = (Underlay & { mtu: number })[];

/**
 * The pod MTU: the cluster's, else what every family's path carries: the underlay's MTU, minus the VXLAN
 * headers of that family (50 bytes over IPv4, 70 over IPv6) when VXLAN may carry pods. A pod has one
 * eth0 for both families, so a dual-stack pod gets the smaller.
 */
export function podMtu(c: Cluster, underlays: readonly { mtu: number }[]): number {
  const fits = c.nets.map((n, i) => underlays[i]!.mtu - (usesVxlan(c) ? VXLAN_OVERHEAD[n.family] : 0));
  const max = Math.min(...fits);
  if (c.mtu !== undefined && c.mtu > max) {
    const why = c.nets.map(
      (n, i) => `${familyName(n.family)}: underlay ${underlays[i]!.mtu}${usesVxlan(c) ? ` - ${VXLAN_OVERHEAD[n.family]}` : ''}`,
    );
    throw new Error(`cluster file: mtu ${c.mtu} does not fit the path (${why.join(', ')}; at most ${max})`);
  }
  return c.mtu ?? max;
}

/**
 * The `ip -batch` lines that make the bridge (with a gateway per family) and the VXLAN devices (one per
 * family) what the cluster file asks, given the links as `ip -j -d addr show` printed them, with a
 * description of each change. Pure.
 */
export function linkPlan(
  c: Cluster,
  selfs: readonly NodeEntry[],
  links: readonly Link[],
  mtu: number,
  underlays: readonly { dev: string; mtu: number }[],
): { lines: string[]; changes: string[] } {
  const lines: string[] = [];
  const changes: string[] = [];
  const step = (what: string, ...l: string[]) => {
    changes.push(what);
    lines.push(...l);
  };
  const byName = new Map(links.map((l) => [l.ifname, l]));

  // The bridge. Existing addresses inside the cluster network but not ours are a previous slice's.
  const br = byName.get(c.bridge);
  if (br && br.linkinfo?.info_kind !== 'bridge') throw new Error(`${c.bridge} exists and is not a bridge`);
  const gw0 = parseCidr(gatewayCidr(selfs[0]!))!;
  const gwMac = bridgeMac({ family: gw0.family, value: gw0.ip });
  if (!br) step(`bridge ${c.bridge} created`, `link add name ${c.bridge} address ${gwMac} mtu ${mtu} type bridge`);
  else if (br.mtu !== mtu) step(`bridge ${c.bridge} mtu ${br.mtu} -> ${mtu}`, `link set dev ${c.bridge} mtu ${mtu}`);
  c.nets.forEach((net, i) => {
    const gw = gatewayCidr(selfs[i]!);
    const cluster = parseCidr(net.clusterCIDR)!;
    const have = addrsOf(br, net.family);
    for (const a of have) {
      if (!sameCidr(a, gw) && cidrContains(cluster, { family: net.family, value: parseCidr(a)!.ip }))
        step(`bridge ${c.bridge}: stale address ${a} removed`, `addr del ${a} dev ${c.bridge}`);
    }
    if (!have.some((a) => sameCidr(a, gw))) step(`bridge ${c.bridge}: gateway ${gw}`, addrLine('add', gw, c.bridge));
  });
  if (!br || !isUp(br)) step(`bridge ${c.bridge} up`, `link set dev ${c.bridge} up`);

  // The VTEPs, one per family. Kind, VNI, local address, port and learning cannot be changed on a live
  // device: recreate.
  c.nets.forEach((net, i) => {
    const self = selfs[i]!;
    const dev = net.device;
    const vx = byName.get(dev);
    if (vx && vx.linkinfo?.info_kind !== 'vxlan') throw new Error(`${dev} exists and is not a VXLAN device`);
    if (!usesVxlan(c)) {
      if (vx) step(`vxlan ${dev} removed (backend host-gw)`, `link del dev ${dev}`);
      return;
    }
    const vmtu = underlays[i]!.mtu - VXLAN_OVERHEAD[net.family];
    const d = vx?.linkinfo?.info_data ?? {};
    const local = net.family === 4 ? d.local : d.local6;
    const fits = vx && d.id === c.vni && sameIP(local, self.nodeIP) && d.port === c.port && d.learning === false;
    // IPv4 peers route through this node's podCIDR network address on the device; IPv6 peers through the
    // link-local address the kernel derives from the device's MAC, so the device needs no IPv6 address.
    const vtep = net.family === 4 ? `${self.vtepIP}/32` : undefined;
    if (!fits) {
      if (vx) step(`vxlan ${dev} recreated (VNI, port or local address changed)`, `link del dev ${dev}`);
      step(
        `vxlan ${dev} created (${familyName(net.family)}, VNI ${c.vni}, port ${c.port}, local ${self.nodeIP}, MAC ${self.vtepMac}, MTU ${vmtu})`,
        `link add name ${dev} address ${self.vtepMac} mtu ${vmtu} type vxlan id ${c.vni} local ${self.nodeIP} dev ${underlays[i]!.dev} ` +
          `dstport ${c.port} nolearning`,
        ...(vtep ? [`addr add ${vtep} dev ${dev}`] : []),
        `link set dev ${dev} up`,
      );
      return;
    }
    if (vx.address !== self.vtepMac) step(`vxlan ${dev} MAC -> ${self.vtepMac}`, `link set dev ${dev} address ${self.vtepMac}`);
    if (vx.mtu !== vmtu) step(`vxlan ${dev} mtu ${vx.mtu} -> ${vmtu}`, `link set dev ${dev} mtu ${vmtu}`);
    if (vtep) {
      for (const a of v4Addrs(vx)) if (a !== vtep) step(`vxlan ${dev}: stale address ${a} removed`, `addr del ${a} dev ${dev}`);
      if (!v4Addrs(vx).includes(vtep)) step(`vxlan ${dev}: VTEP address ${vtep}`, `addr add ${vtep} dev ${dev}`);
    }
    if (!isUp(vx)) step(`vxlan ${dev} up`, `link set dev ${dev} up`);
  });
  return { lines, changes };
}

const sameIP = (a: unknown, b: string): boolean => typeof a === 'string' && parseIP(a)?.value === parseIP(b)?.value;
const sameCidr = (a: string, b: string): boolean => {
  const [x, y] = [parseCidr(a), parseCidr(b)];
  return !!x && !!y && x.family === y.family && x.ip === y.ip && x.prefix === y.prefix;
};

/**
 * Turns on bridge-nf-call-iptables (and -ip6tables for IPv6), loading br_netfilter if needed. From a
 * container (the DaemonSet) both may be impossible (/proc/sys is read-only, modules cannot be loaded):
 * then a warning that says what to do on the host. kubeadm no longer checks this one (since 1.30), so the
 * warning may be the only word of it.
 */
async function ensureBridgeNetfilter(fams: readonly Family[]): Promise<string[]> {
  const keys = fams.map((f) => `net/bridge/bridge-nf-call-ip${f === 6 ? '6' : ''}tables`);
  if (!existsSync(`/proc/sys/${keys[0]}`)) await run('modprobe', ['br_netfilter']).catch(() => undefined);
  if (!existsSync(`/proc/sys/${keys[0]}`)) {
    return [
      "br_netfilter is not loaded and cannot be loaded from here: Services whose backend pod is on the client's own node will " +
        'not work. On the host: modprobe br_netfilter (and list it in /etc/modules-load.d/)',
    ];
  }
  const out: string[] = [];
  for (const key of keys) {
    try {
      ensureSysctl(key, '1');
    } catch (e) {
      const name = key.replace(/\//g, '.');
      out.push(
        `cannot turn on ${name} (${(e as Error).message}): Services whose backend pod is on the client's own node will not work. ` +
          `On the host: sysctl -w ${name}=1 (and in /etc/sysctl.d/)`,
      );
    }
  }
  return out;
}

/** Forwarding on for each family; a warning saying what to do on the host when this process cannot write it (a container). */
/**
 * Every pod packet through the node, also between two pods of this node: the plugin gives each pod its
 * subnet without an on-link route (noprefixroute) and a route to its gateway, so a pod sends everything
 * to the bridge's own MAC and the node routes it — through its forward hook, where NetworkPolicy, the
 * firewall and kube-proxy's rules see it, with or without br_netfilter. The node must then never tell a
 * pod to go direct (an ICMP redirect): the bridge sends none (here), and the node's firewall drops any
 * (firewall/: node-output, PODWIRE-OUTPUT), IPv6's included. A file in /proc, no process.
 */
function podsViaNode(bridge: string): string[] {
  return ensureSysctl(`net/ipv4/conf/${bridge}/send_redirects`, '0') ? [`${bridge}: send_redirects=0`] : [];
}

function ensureForwarding(fams: readonly Family[]): string[] {
  const out: string[] = [];
  for (const f of fams) {
    const [key, name] =
      f === 4 ? ['net/ipv4/ip_forward', 'net.ipv4.ip_forward'] : ['net/ipv6/conf/all/forwarding', 'net.ipv6.conf.all.forwarding'];
    try {
      ensureSysctl(key, '1');
    } catch (e) {
      out.push(
        `${name} is off and cannot be turned on from here (${(e as Error).message}): pods reach only their own node. ` +
          `On the host: sysctl -w ${name}=1 (and in /etc/sysctl.d/)${f === 4 ? "; kubeadm's preflight refuses a node without it" : ''}`,
      );
    }
  }
  return out;
}

/**
 * The VXLAN device's two settings. Strict reverse-path filtering (rp_filter 1, on the device or "all")
 * drops what a peer's own processes send from their Node IP (hostNetwork pods, a daemon bound to its
 * address): it arrives here on the VXLAN device, but the route back to a Node IP leaves by the underlay;
 * loose (2) only asks that some route exists. TX checksum offload: on or off as `offload` decides
 * (ethtool.ts): off costs most of the overlay's throughput, on breaks Services on kernels before 5.7.
 */
async function tuneVxlan(dev: string, family: Family, offload: OffloadDecision): Promise<{ changes: string[]; warnings: string[] }> {
  const changes: string[] = [];
  const warnings: string[] = [];
  // IPv6 has no rp_filter (only an ip6tables match nobody sets by default).
  if (family === 4 && rpFilter(dev) === 1) {
    try {
      ensureSysctl(`net/ipv4/conf/${dev}/rp_filter`, '2');
      changes.push(`${devSysctl(dev, 'rp_filter')}=2 (loose: strict drops peers' traffic sent from their Node IPs)`);
    } catch (e) {
      warnings.push(
        `rp_filter is strict on ${dev} and cannot be changed from here (${(e as Error).message}): on the host, sysctl -w ${devSysctl(dev, 'rp_filter')}=2`,
      );
    }
  }
  const now = await txChecksum(dev);
  if (now === undefined) warnings.push(`cannot read ${dev}'s TX checksum offload: is ethtool installed?`);
  else if (now !== offload.on) {
    await setTxChecksum(dev, offload.on);
    changes.push(`${dev}: TX checksum offload ${offload.on ? 'on' : 'off'} (${t(offload.why.id, offload.why.p)})`);
  }
  return { changes, warnings };
}

/**
 * The node is not a pod: a podCIDR that overlaps a network the node is on (its underlay above all), or
 * holds its default gateway, would put the bridge's connected route over the node's own. Refused before
 * any change, naming the node and where its podCIDR came from.
 */
function guardSlices(c: Cluster, selfs: readonly NodeEntry[], links: readonly Link[], routes: readonly Route[]): void {
  const ours = [c.bridge, ...c.nets.map((n) => n.device)];
  for (const self of selfs) {
    const why = subnetClash(parseCidr(self.podCIDR)!, links, routes, ours);
    if (why) throw new Error(`node ${self.name}: ${self.podCIDRField ?? 'podCIDR'} ${self.podCIDR} ${why}: refused, nothing was changed`);
  }
}

export async function nodeUp(
  c: Cluster,
  name: string,
  subnetFile = DEFAULT_SUBNET_FILE,
): Promise<NodeReport & { podMtu: number; underlay: string }> {
  const selfs = selfNode(c, name);
  const { links, routes } = await readState(undefined, { routes: 'default', routes6: families(c).includes(6) });
  const underlays: Underlays = selfs.map((self) => findUnderlay(links, self));
  guardSlices(c, selfs, links, routes);
  const mtu = podMtu(c, underlays);
  const warnings: string[] = [];
  const changes: string[] = [];
  const notes: string[] = [];
  const fams = families(c);

  // Everything that can refuse (wrong kind of link, MTU) is decided before the first change.
  const plan = linkPlan(c, selfs, links, mtu, underlays);
  warnings.push(...ensureForwarding(fams), ...(await ensureBridgeNetfilter(fams)));
  await ipBatch(plan.lines);
  changes.push(...plan.changes);
  changes.push(...podsViaNode(c.bridge));
  if (fams.includes(6)) {
    // A host may turn IPv6 off for new links by default; the bridge and the VTEP need it (gateway, link-local).
    for (const dev of [c.bridge, ...(usesVxlan(c) ? [c.nets.find((n) => n.family === 6)!.device] : [])]) {
      if (ensureSysctl(`net/ipv6/conf/${dev}/disable_ipv6`, '0')) changes.push(`${dev}: IPv6 turned on`);
    }
  }
  // The node takes no router advertisement from its pods' bridge (a pod's would be dropped at its port
  // anyway: guard/table.ts), whatever forwarding says.
  if (readSysctl(`net/ipv6/conf/${c.bridge}/accept_ra`) !== undefined && ensureSysctl(`net/ipv6/conf/${c.bridge}/accept_ra`, '0'))
    changes.push(`${c.bridge}: accept_ra=0`);
  // Each pod sends only as itself: the checks' table, written whole (the pods' bindings kept).
  if (installed('nft')) {
    await guardApply([], true);
    notes.push('spoofing checks on: table bridge podwire-guard (each pod bound to its port by ADD)');
  } else warnings.push('spoofing checks off: nft is not installed, and the checks are a bridge-family nftables table. Install nftables');
  // Only the cluster's nodes reach the VXLAN port (guard/vxlan.ts); peer syncs keep the node set.
  if (installed('nft')) {
    if (usesVxlan(c)) {
      await writeVxlanTable(
        c.port,
        c.nets.flatMap((n) => n.nodes.map((x) => x.nodeIP)),
      );
      notes.push(`VXLAN port ${c.port} open to the cluster's nodes only: table ${VXLAN_TABLE}`);
    } else if (await removeVxlanTable()) changes.push(`table ${VXLAN_TABLE} removed (no VXLAN)`);
  } else if (usesVxlan(c)) warnings.push(`VXLAN port ${c.port} open to any sender: nft is not installed. Install nftables`);
  const offload = offloadDecision(c.checksumOffload);
  if (usesVxlan(c)) {
    notes.push(
      `TX checksum offload ${offload.on ? 'on' : 'off'} on ${c.nets.map((n) => n.device).join(', ')}: ${t(offload.why.id, offload.why.p)}`,
    );
    for (const net of c.nets) {
      const tuned = await tuneVxlan(net.device, net.family, offload);
      changes.push(...tuned.changes);
      warnings.push(...tuned.warnings);
    }
  }
  const facts = await firewallFacts();
  // node up decides for the node (the plugin and doctor then read its decision from the subnet file).
  const fw = chooseFirewall(
    c.firewall,
    () => undefined,
    () => facts,
  );
  notes.push(`firewall ${fw.backend}: ${fw.why}`);
  if (fw.backend === 'nftables') {
    changes.push(...(await ensureNftNode(c.nets)).map((x) => `${x} written`));
    changes.push(...(await iptablesToNftables(fams)));
  } else {
    changes.push(...(await ensureNodeRules(c.nets)).map((x) => `${x} written`));
    changes.push(...(await nftablesToIptables()));
  }
  const file: SubnetFile = {
    podCIDR: selfs[0]!.podCIDR,
    ...(selfs.length > 1 ? { podCIDRs: selfs.map((x) => x.podCIDR) } : {}),
    clusterCIDR: c.nets[0]!.clusterCIDR,
    ...(c.nets.length > 1 ? { clusterCIDRs: c.nets.map((n) => n.clusterCIDR) } : {}),
    mtu,
    firewall: fw.backend,
    podsViaNode: true,
  };
  if (writeSubnetFile(subnetFile, file)) changes.push(`subnet file ${subnetFile} written`);
  log.info({ node: name, changes, warnings, notes }, 'node up');
  return { changes, warnings, notes, podMtu: mtu, underlay: underlays[0]!.dev };
}

export async function nodeDown(c: Cluster, name: string, subnetFile = DEFAULT_SUBNET_FILE): Promise<NodeReport> {
  selfNode(c, name);
  const { links, routes } = await readState(undefined, { routes: `table main proto ${ROUTE_PROTO}`, routes6: true });
  const changes: string[] = [];
  const warnings: string[] = [];
  const lines: string[] = [];
  // One line per route: a batch line cannot say "IPv6" for a flush, but a prefix says its family.
  if (routes.length) {
    lines.push(...routes.map((r) => `route del ${r.dst} proto ${ROUTE_PROTO}`));
    changes.push(`${routes.length} peer route(s) removed`);
  }
  for (const net of c.nets) {
    const vx = links.find((l) => l.ifname === net.device);
    if (vx?.linkinfo?.info_kind === 'vxlan') {
      lines.push(`link del dev ${net.device}`);
      changes.push(`vxlan ${net.device} removed, with its FDB and neighbour entries`);
    }
  }
  const br = links.find((l) => l.ifname === c.bridge);
  if (br?.linkinfo?.info_kind === 'bridge') {
    const ports = links.filter((l) => l.master === c.bridge).map((l) => l.ifname);
    if (ports.length) warnings.push(`bridge ${c.bridge} kept: pods are still attached (${ports.join(', ')}); delete them first`);
    else {
      lines.push(`link del dev ${c.bridge}`);
      changes.push(`bridge ${c.bridge} removed`);
    }
  }
  await ipBatch(lines);
  if (onPath('iptables')) changes.push(...(await removeNodeRules(families(c))).map((x) => `${x} removed`));
  if (onPath('nft')) {
    changes.push(...(await removeNftNode()));
    if (!links.some((l) => l.master === c.bridge) && (await run('nft', ['delete', 'table', ...GUARD_TABLE.split(' ')])).code === 0)
      changes.push(`table ${GUARD_TABLE} removed`);
    if (await removeVxlanTable()) changes.push(`table ${VXLAN_TABLE} removed`);
  }
  if (existsSync(subnetFile)) {
    rmSync(subnetFile);
    changes.push(`subnet file ${subnetFile} removed`);
  }
  log.info({ node: name, changes, warnings }, 'node down');
  return { changes, warnings };
}

/** What `auto` decides on: which tools are installed, nf_tables answering, iptables' FORWARD policy. */
async function firewallFacts(): Promise<FirewallFacts> {
  const nftOk = installed('nft') && (await run('nft', ['list', 'tables']).catch(() => undefined))?.code === 0;
  const iptables = installed('iptables');
  const fwd = iptables ? await run(iptablesCmd('iptables'), ['-w', '-S', 'FORWARD']).catch(() => undefined) : undefined;
  return { nft: nftOk, iptables, forwardPolicy: /^-P FORWARD (\w+)/m.exec(fwd?.stdout ?? '')?.[1], kernel: release() };
}
