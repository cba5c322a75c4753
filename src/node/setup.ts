// `podwire node up` / `node down`: everything a node needs before pods and peers, read from the kernel
// first and changed only where it differs, so running `up` twice changes nothing:
//   sysctls    ip_forward; br_netfilter + bridge-nf-call-iptables (Services to a pod on the same bridge)
//   bridge     cni0 with the slice's gateway address, MAC derived from it, pod MTU
//   vxlan      (vxlan/auto) the VTEP: VNI, local Node IP, port, nolearning, derived MAC, podCIDR's network
//              address /32, MTU = underlay - 50; loose rp_filter where it was strict, no TX checksum
//              offload (see tuneVxlan)
//   iptables   PODWIRE-FORWARD and PODWIRE-POSTROUTING (kernel/firewall.ts)
//   file       the node subnet file the plugin's IPAM reads ({podCIDR, clusterCIDR, mtu})
// `down` removes what `up` made: our routes, the VXLAN device (and with it every FDB and neighbour entry),
// the bridge unless pods are still attached to it, the chains and the subnet file. Sysctls stay: they are
// settings other software relies on too, not objects podwire owns.
import { existsSync, rmSync } from 'node:fs';
import { writeIfChanged } from '../files.js';
import { DEFAULT_SUBNET_FILE, formatSubnetFile } from '../ipam/subnet-file.js';
import { ensureNodeRules, removeNodeRules } from '../kernel/firewall.js';
import { bridgeMac } from '../kernel/links.js';
import { ipBatch } from '../kernel/run.js';
import { type Link, isUp, readState, v4Addrs } from '../kernel/state.js';
import { devSysctl, ensureSysctl, rpFilter } from '../kernel/sysctl.js';
import { setTxChecksum, txChecksum } from '../kernel/ethtool.js';
import { run } from '../run.js';
import { log } from '../log.js';
import { cidrContains, parseCidr } from '../net/ip.js';
import { type Cluster, type NodeEntry, VXLAN_OVERHEAD, gatewayCidr, selfNode, usesVxlan } from './cluster.js';
import { findUnderlay } from './sync.js';
import { ROUTE_PROTO } from './peers.js';

export interface NodeReport {
  /** One line per thing created, changed or removed; empty when the node was already as asked. */
  changes: string[];
  warnings: string[];
}

/** The pod MTU: the cluster's, else the underlay's minus the VXLAN headers when VXLAN may carry pods. */
export function podMtu(c: Cluster, underlayMtu: number): number {
  const max = underlayMtu - (usesVxlan(c) ? VXLAN_OVERHEAD : 0);
  if (c.mtu !== undefined && c.mtu > max) {
    throw new Error(
      `cluster file: mtu ${c.mtu} does not fit: the underlay's MTU is ` +
        `${underlayMtu}${usesVxlan(c) ? ` and VXLAN needs ${VXLAN_OVERHEAD} bytes` : ''} (at most ${max})`,
    );
  }
  return c.mtu ?? max;
}

/**
 * The `ip -batch` lines that make the bridge and the VXLAN device what the cluster file asks, given the
 * links as `ip -j -d addr show` printed them, with a description of each change. Pure.
 */
export function linkPlan(
  c: Cluster,
  self: NodeEntry,
  links: readonly Link[],
  mtu: number,
  underlayDev: string,
): { lines: string[]; changes: string[] } {
  const lines: string[] = [];
  const changes: string[] = [];
  const step = (what: string, ...l: string[]) => {
    changes.push(what);
    lines.push(...l);
  };
  const byName = new Map(links.map((l) => [l.ifname, l]));

  // The bridge. Existing addresses inside the cluster network but not ours are a previous slice's.
  const gw = gatewayCidr(self);
  const br = byName.get(c.bridge);
  const gwMac = bridgeMac(parseCidr(gw)!.ip);
  if (br && br.linkinfo?.info_kind !== 'bridge') throw new Error(`${c.bridge} exists and is not a bridge`);
  if (!br) step(`bridge ${c.bridge} created`, `link add name ${c.bridge} address ${gwMac} mtu ${mtu} type bridge`);
  else if (br.mtu !== mtu) step(`bridge ${c.bridge} mtu ${br.mtu} -> ${mtu}`, `link set dev ${c.bridge} mtu ${mtu}`);
  const cluster = parseCidr(c.clusterCIDR)!;
  for (const a of v4Addrs(br)) {
    if (a !== gw && cidrContains(cluster, { family: 4, value: parseCidr(a)!.ip }))
      step(`bridge ${c.bridge}: stale address ${a} removed`, `addr del ${a} dev ${c.bridge}`);
  }
  if (!v4Addrs(br).includes(gw)) step(`bridge ${c.bridge}: gateway ${gw}`, `addr add ${gw} dev ${c.bridge}`);
  if (!br || !isUp(br)) step(`bridge ${c.bridge} up`, `link set dev ${c.bridge} up`);

  // The VTEP. Kind, VNI, local address, port and learning cannot be changed on a live device: recreate.
  const vx = byName.get(c.device);
  if (vx && vx.linkinfo?.info_kind !== 'vxlan') throw new Error(`${c.device} exists and is not a VXLAN device`);
  if (!usesVxlan(c)) {
    if (vx) step(`vxlan ${c.device} removed (backend host-gw)`, `link del dev ${c.device}`);
    return { lines, changes };
  }
  const d = vx?.linkinfo?.info_data ?? {};
  const fits = vx && d.id === c.vni && d.local === self.nodeIP && d.port === c.port && d.learning === false;
  const vtep = `${self.vtepIP}/32`;
  if (!fits) {
    if (vx) step(`vxlan ${c.device} recreated (VNI, port or local address changed)`, `link del dev ${c.device}`);
    step(
      `vxlan ${c.device} created (VNI ${c.vni}, port ${c.port}, local ${self.nodeIP}, MAC ${self.vtepMac})`,
      `link add name ${c.device} address ${self.vtepMac} mtu ${mtu} type vxlan id ${c.vni} local ${self.nodeIP} dev ${underlayDev} ` +
        `dstport ${c.port} nolearning`,
      `addr add ${vtep} dev ${c.device}`,
      `link set dev ${c.device} up`,
    );
    return { lines, changes };
  }
  if (vx.address !== self.vtepMac) step(`vxlan ${c.device} MAC -> ${self.vtepMac}`, `link set dev ${c.device} address ${self.vtepMac}`);
  if (vx.mtu !== mtu) step(`vxlan ${c.device} mtu ${vx.mtu} -> ${mtu}`, `link set dev ${c.device} mtu ${mtu}`);
  for (const a of v4Addrs(vx)) if (a !== vtep) step(`vxlan ${c.device}: stale address ${a} removed`, `addr del ${a} dev ${c.device}`);
  if (!v4Addrs(vx).includes(vtep)) step(`vxlan ${c.device}: VTEP address ${vtep}`, `addr add ${vtep} dev ${c.device}`);
  if (!isUp(vx)) step(`vxlan ${c.device} up`, `link set dev ${c.device} up`);
  return { lines, changes };
}

/** Turns on bridge-nf-call-iptables, loading br_netfilter if needed; a warning when the kernel says no. */
/**
 * Turns on bridge-nf-call-iptables, loading br_netfilter if needed. From a container (the DaemonSet) both
 * may be impossible (/proc/sys is read-only, modules cannot be loaded): then a warning that says what to do
 * on the host. kubeadm no longer checks this one (since 1.30), so the warning may be the only word of it.
 */
async function ensureBridgeNetfilter(): Promise<string | undefined> {
  const key = 'net/bridge/bridge-nf-call-iptables';
  if (!existsSync(`/proc/sys/${key}`)) await run('modprobe', ['br_netfilter']).catch(() => undefined);
  if (!existsSync(`/proc/sys/${key}`)) {
    return (
      "br_netfilter is not loaded and cannot be loaded from here: Services whose backend pod is on the client's own node will " +
      'not work. On the host: modprobe br_netfilter (and list it in /etc/modules-load.d/)'
    );
  }
  try {
    ensureSysctl(key, '1');
    return undefined;
  } catch (e) {
    return (
      `cannot turn on bridge-nf-call-iptables (${(e as Error).message}): Services whose backend pod is on the client's own node ` +
      'will not work. On the host: sysctl -w net.bridge.bridge-nf-call-iptables=1 (and in /etc/sysctl.d/)'
    );
  }
}

/** ip_forward on; a warning saying what to do on the host when this process cannot write it (a container). */
function ensureForwarding(): string | undefined {
  try {
    ensureSysctl('net/ipv4/ip_forward', '1');
    return undefined;
  } catch (e) {
    return (
      `net.ipv4.ip_forward is off and cannot be turned on from here (${(e as Error).message}): pods reach only their own node. ` +
      "On the host: sysctl -w net.ipv4.ip_forward=1 (and in /etc/sysctl.d/); kubeadm's preflight refuses a node without it"
    );
  }
}

/**
 * The VXLAN device's two settings that break pods quietly. Strict reverse-path filtering (rp_filter 1, on
 * the device or "all") drops what a peer's own processes send from their Node IP (hostNetwork pods, a
 * daemon bound to its address): it arrives here on the VXLAN device, but the route back to a Node IP
 * leaves by the underlay; loose (2) only asks that some route exists. TX checksum offload: see ethtool.ts.
 */
async function tuneVxlan(dev: string): Promise<{ changes: string[]; warnings: string[] }> {
  const changes: string[] = [];
  const warnings: string[] = [];
  if (rpFilter(dev) === 1) {
    try {
      ensureSysctl(`net/ipv4/conf/${dev}/rp_filter`, '2');
      changes.push(`${devSysctl(dev, 'rp_filter')}=2 (loose: strict drops peers' traffic sent from their Node IPs)`);
    } catch (e) {
      warnings.push(
        `rp_filter is strict on ${dev} and cannot be changed from here (${(e as Error).message}): on the host, sysctl -w ${devSysctl(dev, 'rp_filter')}=2`,
      );
    }
  }
  const offload = await txChecksum(dev);
  if (offload === undefined) warnings.push(`cannot read ${dev}'s TX checksum offload: is ethtool installed?`);
  else if (offload) {
    await setTxChecksum(dev, false);
    changes.push(`${dev}: TX checksum offload off`);
  }
  return { changes, warnings };
}

export async function nodeUp(
  c: Cluster,
  name: string,
  subnetFile = DEFAULT_SUBNET_FILE,
): Promise<NodeReport & { podMtu: number; underlay: string }> {
  const self = selfNode(c, name);
  const { links } = await readState(undefined);
  const underlay = findUnderlay(links, self);
  const mtu = podMtu(c, underlay.mtu);
  const warnings: string[] = [];
  const changes: string[] = [];

  // Everything that can refuse (wrong kind of link, MTU) is decided before the first change.
  const plan = linkPlan(c, self, links, mtu, underlay.dev);
  for (const w of [ensureForwarding(), await ensureBridgeNetfilter()]) if (w) warnings.push(w);
  await ipBatch(plan.lines);
  changes.push(...plan.changes);
  if (usesVxlan(c)) {
    const tuned = await tuneVxlan(c.device);
    changes.push(...tuned.changes);
    warnings.push(...tuned.warnings);
  }
  changes.push(...(await ensureNodeRules(c.clusterCIDR)).map((x) => `iptables ${x} written`));
  if (writeIfChanged(subnetFile, formatSubnetFile({ podCIDR: self.podCIDR, clusterCIDR: c.clusterCIDR, mtu })))
    changes.push(`subnet file ${subnetFile} written`);
  log.info({ node: name, changes, warnings }, 'node up');
  return { changes, warnings, podMtu: mtu, underlay: underlay.dev };
}

export async function nodeDown(c: Cluster, name: string, subnetFile = DEFAULT_SUBNET_FILE): Promise<NodeReport> {
  selfNode(c, name);
  const { links, routes } = await readState(undefined, { routes: `table main proto ${ROUTE_PROTO}` });
  const changes: string[] = [];
  const warnings: string[] = [];
  const lines: string[] = [];
  if (routes.length) {
    lines.push(`route flush table main proto ${ROUTE_PROTO}`);
    changes.push(`${routes.length} peer route(s) removed`);
  }
  const vx = links.find((l) => l.ifname === c.device);
  if (vx?.linkinfo?.info_kind === 'vxlan') {
    lines.push(`link del dev ${c.device}`);
    changes.push(`vxlan ${c.device} removed, with its FDB and neighbour entries`);
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
  changes.push(...(await removeNodeRules()).map((x) => `iptables ${x} removed`));
  if (existsSync(subnetFile)) {
    rmSync(subnetFile);
    changes.push(`subnet file ${subnetFile} removed`);
  }
  log.info({ node: name, changes, warnings }, 'node down');
  return { changes, warnings };
}
