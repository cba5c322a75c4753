// The podwire plugin: a veth pair from the pod's namespace to the node's bridge, addresses from IPAM.
//
// ADD, each step undone if a later one fails:
//   1. IPAM: an address from the node's slice (built-in allocator, or a delegated IPAM plugin)
//   2. host side, one `ip -batch`: the veth pair (peer created directly as CNI_IFNAME inside the pod), host
//      end on the bridge, then the bridge's gateway address (the bridge created if missing, with a pinned
//      MAC). The node is never a pod: its own namespace as CNI_NETNS, a `bridge` that is another kind of
//      link and a pod subnet on top of the node's networks are refused before anything changes (guardNode).
//      With the built-in IPAM the gateway is known from the config, so 1 and 2 run at the same time.
//   3. pod side, one `ip -batch` in the pod's namespace: lo up, address, link up, routes
//   4. ip_forward (a file in /proc), while 3 runs
//   5. the pod's nat rules when asked (ipMasq, and hostPorts from runtimeConfig.portMappings), while 3
//      runs: elements of table inet podwire (nftables), or chains (iptables); see kernel/backend.ts
//
// Processes, the per-pod path's largest cost after the runtime's own start-up (each ~1-2 ms of CPU):
//   ADD: 2 — `ip -batch` on the host and `ip -n POD -batch` in the pod. Two is the least: an `ip` works
//        in one network namespace, and the pod's addresses and routes can only be set from inside its
//        namespace (an interface moved in afterwards loses them). Both are started before they are needed
//        and fed later, so their start-up overlaps podwire's own work. One more on a node's first pod
//        (the bridge is assumed to exist, and made when the kernel says it is missing), and one or two
//        reading the node (guardNode) when the bridge is made or gets gateways it has not been checked
//        with. With ipMasq or hostPorts: one `nft` (nftables backend, run while the pod's `ip` works),
//        or, with the iptables backend, an iptables-restore per family of the pod and for hostPorts an
//        iptables-save per family (and, on the node's first, the shared chains' iptables calls).
//   DEL: 1 — `ip -force -batch` deleting the host veth (the pod's end goes with it), with no read first.
//        Its nat rules only when the pod may have some: ipMasq, or a runtimeConfig that carries
//        portMappings (or does not say): one `nft` transaction (at the same time as the veth's deletion),
//        or iptables-save and -restore.
//   Neither takes a lock (see ipam/allocator.ts), reads the kernel's state first, or runs a process to
//   learn what an earlier call's result or a derived name (kernel/names.ts) already says.
import { CniError, Code, invalidConfig, invalidEnv } from '../cni/errors.js';
import type { Attachment, Context, Interface, Plugin, Result, Route } from '../cni/types.js';
import { type IpamAdd, type PreparedAdd, type ReclaimHooks, ipamFor } from '../ipam/ipam.js';
import { type Cidr, type IP, formatCidr, formatIP, parseCidr, parseIP } from '../net/ip.js';
import type { Trace } from '../cni/trace.js';
import { type IpStep, type Step, cmds } from '../kernel/step.js';
import type { Msg } from '../i18n/index.js';
import { type BridgeSpec, bridgeLines, bridgeMac, deleteLinks, localLinks, podLines, vethLines } from '../kernel/links.js';
import { type AttachmentNames, HOST_VETH_RE, attachmentNames } from '../kernel/names.js';
import { delChains, natCommands } from '../kernel/chains.js';
import { type PortMapping, addHostports, hostportStep } from '../kernel/hostport.js';
import { addMasq, masqStep } from '../kernel/masq.js';
import type { PodRules } from '../kernel/backend.js';
// kernel/nftables.ts is loaded only by the calls that write nftables elements (a pod with hostPorts or
// ipMasq, their DEL, GC, reclaim): every other ADD and DEL pays nothing for it.
const nft = () => import('../kernel/nftables.js');
import { IpBatchError, type PendingBatch, ipBatch, ipCommand, isExists, isNoSuchDevice, startIpBatch } from '../kernel/run.js';
import { isUp, kind, linkByName, readState } from '../kernel/state.js';
import { subnetClash } from '../kernel/guard.js';
import { FORWARDING_STEP, ensureSysctl } from '../kernel/sysctl.js';
import { dirOf, sys } from '../files.js';
import { log } from '../log.js';
import { timed } from '../profile.js';
import {
  type BridgeConf,
  DEFAULT_MTU,
  mayHaveHostports,
  parseBridgeConf,
  firewallFor,
  parsePortMappings,
  requestedIP,
  requestedMac,
  validAttachments,
} from './config.js';

interface PodAddress {
  /** As in the result: "10.244.1.5/24". */
  address: string;
  ip: IP;
  cidr: Cidr;
  gateway: IP;
}

const DEFAULT_DST = { 4: '0.0.0.0/0', 6: '::/0' } as const;

/** The IPAM result's addresses with their gateways (a delegated IPAM may omit one: use the first address). */
function podAddresses(result: Result): PodAddress[] {
  if (!result.ips?.length) throw new CniError(Code.Delegate, 'IPAM returned no IP address');
  return result.ips.map((ip) => {
    const cidr = parseCidr(ip.address);
    if (!cidr) throw new CniError(Code.Delegate, `IPAM returned an invalid address "${ip.address}"`);
    const gw = ip.gateway !== undefined ? parseIP(ip.gateway) : { family: cidr.family, value: cidr.first + 1n };
    if (!gw) throw new CniError(Code.Delegate, `IPAM returned an invalid gateway "${ip.gateway}"`);
    return { address: ip.address, ip: { family: cidr.family, value: cidr.ip }, cidr, gateway: gw };
  });
}

/** Default route per family (when isDefaultGateway) plus IPAM routes, deduplicated by destination. */
function podRoutes(addrs: PodAddress[], ipamRoutes: Route[], isDefaultGateway: boolean): Route[] {
  const routes = new Map<string, Route>();
  for (const a of addrs) {
    if (isDefaultGateway && !routes.has(DEFAULT_DST[a.cidr.family])) {
      routes.set(DEFAULT_DST[a.cidr.family], { dst: DEFAULT_DST[a.cidr.family], gw: formatIP(a.gateway) });
    }
  }
  for (const r of ipamRoutes) {
    const family = r.dst.includes(':') ? 6 : 4;
    const gw = r.gw ?? addrs.find((a) => a.cidr.family === family)?.gateway;
    routes.set(r.dst, { dst: r.dst, gw: typeof gw === 'string' ? gw : gw && formatIP(gw) });
  }
  return [...routes.values()];
}

function requireNetns(netns: string): void {
  if (!sys().exists(netns)) throw invalidEnv('CNI_NETNS', `${netns} does not exist`);
}

/**
 * The pod's namespace is never the node's: wired as a pod, the node would get an eth0 with a Pod IP and
 * its default route replaced by one via the pods' gateway. Two stat(2) calls (the same test as `ip netns
 * identify`: device and inode of the namespace files), a few microseconds.
 */
function refuseOwnNetns(netns: string): void {
  if (sys().sameFile(netns, '/proc/self/ns/net')) {
    throw invalidEnv('CNI_NETNS', `${netns} is the node's own network namespace (this plugin's), not a pod's: nothing was changed`);
  }
}

/** A slice's gateway on the bridge; `field` says where the slice was given. */
type Gateway = { subnet: Cidr; ip: IP; field?: string };

/** The note (in the built-in IPAM's store) of the bridge and gateways last checked against the node's networks. */
const GUARD_NOTE = '.gateways';
const guardNote = (bridge: string, gws: readonly Gateway[]): string =>
  `${bridge} ${gws.map((g) => formatCidr(g.subnet, g.ip.value)).join(' ')}\n`;

/**
 * The node is not a pod (what a wrong config must never do to it): before podwire makes the bridge, or
 * gives it gateways it has not had, it reads the node's links and default routes (one or two `ip`, on
 * those rare ADDs only) and refuses, changing nothing, a `bridge` that is some other kind of link (the
 * uplink, a VXLAN device, lo: the gateway address would land on it) and a pod subnet that overlaps a
 * network the node is on or holds its default gateway.
 */
async function guardNode(bridge: string, gws: readonly Gateway[]): Promise<void> {
  const { links, routes } = await readState(undefined, { routes: 'default', routes6: gws.some((g) => g.subnet.family === 6) });
  const br = linkByName(links, bridge);
  if (br && kind(br) !== 'bridge') throw notABridge(bridge, kind(br));
  for (const g of gws) {
    const why = subnetClash(g.subnet, links, routes, [bridge]);
    if (why) {
      throw invalidConfig(
        g.field ?? 'ipam',
        `the pod subnet ${formatCidr(g.subnet)} ${why}: its gateway on ${bridge} would take the node's own traffic (nothing was changed)`,
      );
    }
  }
}

const notABridge = (bridge: string, k: string | undefined): CniError =>
  invalidConfig(
    'bridge',
    `${bridge} exists and is not a bridge (it is ${k ? `a ${k} device` : 'a device of another kind'}): it is not podwire's, and the pods' ` +
      'gateway address must not go on it (nothing was changed)',
  );

/** Names of the links in the pod's namespace (slow path only: explaining a failed ADD). */
async function podLinks(netns: string): Promise<string[]> {
  return (await readState(netns)).links.map((l) => l.ifname);
}

/** What one `ip -batch` did, for Trace.batch: steps (as single commands), ms, and the failing line. */
type BatchRecord = [steps: Step[], ms: number, failedLine?: number, error?: string];

/**
 * Applies steps with one `ip -batch` (in `netns`, or on the host) and, when tracing, hands `record` what
 * happened. Without a trace nothing is formatted (ipCommand looks at the filesystem for each line).
 */
async function apply(
  batch: PendingBatch,
  steps: IpStep[],
  netns: string | undefined,
  record: ((r: BatchRecord) => void) | undefined,
): Promise<void> {
  const started = performance.now();
  const shown = (): Step[] => steps.map((s) => ({ ...s, cmd: ipCommand(s.cmd, netns) }));
  try {
    await batch.apply(cmds(steps));
  } catch (e) {
    record?.([shown(), performance.now() - started, (e instanceof IpBatchError && e.line) || steps.length, (e as Error).message]);
    throw e;
  }
  record?.([shown(), performance.now() - started]);
}

/**
 * A failed ADD's way back: each step that made something pushes its undo right after (as the reference
 * bridge plugin defers a cleanup after each acquisition), and on failure the undos run in reverse order,
 * every one even if another fails.
 */
class Rollback {
  private readonly undos: [label: Msg, undo: () => Promise<unknown>][] = [];

  constructor(
    private readonly call: Msg,
    private readonly trace: Trace | undefined,
  ) {}

  push(label: Msg, undo: () => Promise<unknown>): void {
    this.undos.push([label, undo]);
  }

  async run(): Promise<void> {
    for (const [label, undo] of this.undos.reverse()) {
      try {
        await undo();
        this.trace?.step({ id: 'undo', p: { undo: label, call: this.call } });
      } catch (e) {
        log.warn({ err: (e as Error).message, undo: label.id, call: this.call.p }, 'cleanup step of ADD failed');
        this.trace?.step({ id: 'undoFailed', p: { undo: label, call: this.call, error: (e as Error).message } });
      }
    }
  }
}

/** What ADD wires, once its config is read. */
interface Wiring {
  ctx: Context;
  bc: BridgeConf;
  names: AttachmentNames;
  podMac: string;
  mtu: number;
  mappings: PortMapping[];
  rollback: Rollback;
  /** The host's `ip -batch`, started before the config was checked (see add). */
  hostIp: PendingBatch;
  /** The pod's, started once the host's has its lines (see podIp). */
  podIp?: PendingBatch;
  /** The node was checked against this ADD's gateways already (guardNode). */
  guarded?: boolean;
}

/**
 * The pod's `ip -batch`: started as soon as the host's is told what to do, so that its start-up (~1 ms)
 * runs while the kernel wires the host side, and not in front of it.
 */
const podIp = (w: Wiring): PendingBatch => (w.podIp ??= startIpBatch(w.ctx.env.netns));

/**
 * The host side's `ip -batch`: the veth pair first, its host end put on the bridge, then the bridge's
 * gateway address(es) and `up`. In that order because `master` is the first line that touches the bridge
 * and the kernel refuses it (EOPNOTSUPP) for a link that is no bridge — before any address lands on a
 * node's uplink, VXLAN device or lo. The bridge exists but for a node's first pod, so the batch assumes it
 * does; when `master` names a missing device, the node is checked (guardNode) and the batch goes on in a
 * second one that creates the bridge (one more process, once per node; a parallel ADD may create it in
 * between, which is fine too). The command starts before the first await, so the caller goes on
 * (allocating the address) while it runs.
 */
async function hostBatch(
  ip: PendingBatch,
  bridge: BridgeSpec,
  veth: IpStep[],
  guard: () => Promise<void>,
  record: ((r: BatchRecord) => void) | undefined,
): Promise<void> {
  const [create, ...attach] = veth;
  // For the trace, what reached the kernel: the first batch, or (a node's first pod) the veth it made
  // followed by the batch that made the bridge.
  let first: BatchRecord | undefined;
  let then: BatchRecord | undefined;
  try {
    await apply(ip, [create!, ...attach, ...bridgeLines(bridge, true)], undefined, record && ((r) => (first = r)));
  } catch (e) {
    if (!(e instanceof IpBatchError)) throw e;
    if (e.line === 2 && /Operation not supported/.test(e.stderr)) throw notABridge(bridge.name, undefined);
    // `master` naming a missing device: ip stops at the argument, with no line number.
    if (!(isNoSuchDevice(e) && e.stderr.includes(`"${bridge.name}"`))) throw e;
    await guard();
    const keep = record && ((r: BatchRecord) => (then = r));
    try {
      await apply(startIpBatch(), [...bridgeLines(bridge, false), ...attach], undefined, keep);
    } catch (e2) {
      if (!(isExists(e2) && (e2 as IpBatchError).line === 1)) throw e2;
      await apply(startIpBatch(), [...attach, ...bridgeLines(bridge, true)], undefined, keep);
    }
  } finally {
    if (record && first) {
      record(then ? [[first[0][0]!, ...then[0]], first[1] + then[1], then[2] && then[2] + 1, then[3]] : first);
    }
  }
}

/** Step 2: the bridge and the veth pair, its pod end made inside the pod as CNI_IFNAME. Returns the bridge's MAC. */
async function wireHost(w: Wiring, gateways: Gateway[], record: ((r: BatchRecord) => void) | undefined): Promise<string> {
  const { env } = w.ctx;
  const host = w.names.hostVeth;
  const brMac = bridgeMac(gateways[0]!.ip);
  const bridge = { name: w.bc.bridge, mtu: w.mtu, mac: brMac, gatewayCidrs: gateways.map((g) => formatCidr(g.subnet, g.ip.value)) };
  const veth = vethLines({
    host,
    hostMac: w.names.hostMac,
    peer: env.ifname,
    peerMac: w.podMac,
    netns: env.netns,
    mtu: w.mtu,
    bridge: w.bc.bridge,
    hairpin: w.bc.hairpinMode,
  });
  const undo = () => ipBatch([`link del dev ${host}`]);
  const undoVeth: Msg = { id: 'undo.veth', p: { host, ifname: env.ifname } };
  try {
    // Checked already when the gateways were new to this bridge (add); else now, before the bridge is made.
    const guard = async () => (w.guarded ? undefined : guardNode(w.bc.bridge, gateways));
    await hostBatch(w.hostIp, bridge, veth, guard, record);
  } catch (e) {
    if (isExists(e) && (e as IpBatchError).command.startsWith(`link add name ${host} `)) {
      if ((await podLinks(env.netns)).includes(env.ifname)) {
        throw new CniError(Code.InterfaceExists, `interface ${env.ifname} already exists in ${env.netns}`);
      }
      throw new CniError(Code.InterfaceExists, `host interface ${host} already exists (an earlier ADD of this container was not deleted)`);
    }
    // Made before a later line failed?
    if (localLinks().has(host)) w.rollback.push(undoVeth, undo);
    throw e;
  }
  w.rollback.push(undoVeth, undo);
  return brMac;
}

/**
 * Steps 1 and 2: the Pod IP, and the host side. With the built-in IPAM the gateway is known from the
 * config, so the host side's `ip` starts first and the address is taken (files only, no process) while it
 * runs; a delegated IPAM plugin must answer before the host side knows its gateway.
 */
async function addressAndHost(w: Wiring, prepared: PreparedAdd): Promise<{ got: IpamAdd; brMac: string }> {
  const trace = w.ctx.trace;
  let got: IpamAdd | undefined;
  let batch: BatchRecord | undefined;
  const record = trace && ((r: BatchRecord) => (batch = r));
  const allocate = async (): Promise<IpamAdd> => {
    got = await prepared.allocate();
    w.rollback.push({ id: 'undo.address' }, got.undo);
    return got;
  };
  try {
    if (prepared.gateways) {
      const wired = wireHost(w, prepared.gateways, record);
      podIp(w);
      const [host, address] = await Promise.allSettled([wired, allocate()]);
      if (address.status === 'rejected') throw address.reason;
      if (host.status === 'rejected') throw host.reason;
      return { got: address.value, brMac: host.value };
    }
    podIp(w);
    const g = await allocate();
    return {
      got: g,
      brMac: await wireHost(
        w,
        podAddresses(g.result).map((a) => ({ subnet: a.cidr, ip: a.gateway })),
        record,
      ),
    };
  } finally {
    // Traced in the order a reader expects (address, then host side), whichever finished first.
    if (got) trace?.step(got.step, prepared.gateways && batch ? 'note.withHost' : undefined);
    if (batch) trace?.batch(...batch);
  }
}

/** Steps 3 and 4: inside the pod (lo, address, eth0 up, routes), and forwarding (files in /proc) while that runs. */
async function wirePod(w: Wiring, addrs: PodAddress[], routes: Route[]): Promise<void> {
  const { env, trace } = w.ctx;
  const [inPod, forwarding] = await Promise.allSettled([
    apply(
      podIp(w),
      podLines({ ifname: env.ifname, addresses: addrs.map((a) => a.address), routes }),
      env.netns,
      trace && ((r) => trace.batch(...r)),
    ),
    Promise.resolve().then(() =>
      timed('sysctl', () => {
        if (addrs.some((a) => a.cidr.family === 6)) ensureSysctl('net/ipv6/conf/all/forwarding', '1');
        return ensureSysctl('net/ipv4/ip_forward', '1');
      }),
    ),
  ]);
  if (inPod.status === 'rejected') throw inPod.reason;
  if (forwarding.status === 'rejected') throw forwarding.reason;
  trace?.step(FORWARDING_STEP, forwarding.value ? undefined : 'note.forwardingOn');
}

/** One attachment's rules per address, as both backends describe them. */
function podRules(
  w: Pick<Wiring, 'names' | 'bc' | 'ctx'>,
  addrs: readonly { ip: string; subnet: string }[],
  mappings: PortMapping[],
): PodRules[] {
  const label = `${w.ctx.env.containerID}/${w.ctx.env.ifname}`;
  return addrs
    .map((a) => ({
      owner: w.names.owner,
      label,
      ip: a.ip,
      subnet: a.subnet,
      masq: w.bc.ipMasq,
      // A hostPort answers in every family the pod has, unless its hostIP names one.
      mappings: mappings.filter((m) => !m.hostIP || m.hostIP.includes(':') === a.ip.includes(':')),
    }))
    .filter((p) => p.masq || p.mappings.length);
}

/** Step 5: the pod's nat rules: masquerade (ipMasq) and hostPorts (runtimeConfig.portMappings). */
async function addNat(w: Wiring, addrs: PodAddress[], mappings: PortMapping[]): Promise<Step[]> {
  const steps: Step[] = [];
  const trace = { step: (st: Step) => steps.push(st) };
  const pods = podRules(
    w,
    addrs.map((a) => ({ ip: formatIP(a.ip), subnet: formatCidr(a.cidr) })),
    mappings,
  );
  if (!pods.length) return steps;
  if (firewallFor(w.ctx.conf, w.bc) === 'nftables') {
    // One transaction for every family: all of it is there, or none.
    const { addPodElements, nftCommands, removePodElements } = await nft();
    w.rollback.push({ id: 'undo.nft' }, () => removePodElements(pods));
    const lines = await addPodElements(pods);
    const parts = pods.flatMap((p): Msg[] => [
      ...(p.masq ? [{ id: 'part.masq', p: { ip: p.ip } } as const] : []),
      ...p.mappings.map((m) => ({
        id: 'part.hostportTo' as const,
        p: { hostPort: m.hostPort, protocol: m.protocol, ip: p.ip, containerPort: m.containerPort },
      })),
    ]);
    trace.step({ id: 'nftAdd', p: { parts }, cmd: nftCommands(lines) });
    return steps;
  }
  const masq = w.bc.ipMasq ? [w.names.masqChain] : [];
  const hostports = mappings.length ? [w.names.hostportChain] : [];
  // Pushed before the rules go in: whatever part of them was made, the chains go as a whole.
  w.rollback.push({ id: 'undo.chains' }, () =>
    removePodChains(
      masq,
      hostports,
      addrs.some((a) => a.cidr.family === 6),
    ),
  );
  for (const p of pods.filter((x) => x.masq)) {
    const lines = await addMasq(w.names.masqChain, p.ip, p.subnet);
    trace.step(masqStep(p.ip, p.subnet, lines));
  }
  // Each family's rules go to that family's iptables.
  for (const p of pods.filter((x) => x.mappings.length)) {
    const done = await addHostports(w.names.hostportChain, p.mappings, p.ip, p.subnet);
    trace.step(hostportStep(p.mappings, p.ip, done));
  }
  return steps;
}

/** Refuses a hostIP of a family the pod has no address in (before anything is made). */
function checkHostIPs(mappings: readonly PortMapping[], families: readonly number[]): void {
  mappings.forEach((m, i) => {
    if (m.hostIP && !families.includes(m.hostIP.includes(':') ? 6 : 4)) {
      throw invalidConfig(`runtimeConfig.portMappings[${i}].hostIP`, `${m.hostIP}: the pod has no address of that family`);
    }
  });
}

async function add(ctx: Context): Promise<Result> {
  const { env, conf } = ctx;
  // The host's `ip` starts first: started, not told anything yet, it changes nothing, and its start-up
  // (~1 ms) runs while the config is read and checked (before the first change: bad input changes
  // nothing), instead of after.
  const hostIp = startIpBatch();
  let w: Wiring;
  let prepared: PreparedAdd;
  try {
    const bc = parseBridgeConf(conf);
    const mappings = parsePortMappings(conf.runtimeConfig?.portMappings);
    const names = attachmentNames(conf.name, env.containerID, env.ifname);
    const podMac = requestedMac(ctx) ?? names.podMac;
    requireNetns(env.netns);
    timed('netns: not the node', () => refuseOwnNetns(env.netns));
    prepared = await ipamFor(ctx).prepare(ctx, (family) => requestedIP(ctx, family), reclaimHooks(ctx, bc));
    // Bad input changes nothing: a hostIP of a family the pod will not have is refused before the first change.
    if (prepared.gateways)
      checkHostIPs(
        mappings,
        prepared.gateways.map((g) => g.subnet.family),
      );
    const mtu = bc.mtu ?? prepared.mtu ?? DEFAULT_MTU;
    w = {
      ctx,
      bc,
      names,
      podMac,
      mtu,
      mappings,
      hostIp,
      rollback: new Rollback({ id: 'call.add', p: { containerID: env.containerID, ifname: env.ifname } }, ctx.trace),
    };
  } catch (e) {
    hostIp.cancel();
    throw e;
  }
  const { bc, names, podMac, mtu, mappings } = w;
  try {
    // Gateways this bridge has not been checked with (the note is one small file read per ADD).
    const note = prepared.gateways && prepared.storeDir ? `${prepared.storeDir}/${GUARD_NOTE}` : undefined;
    const noted = note && guardNote(bc.bridge, prepared.gateways!);
    const guarded = note !== undefined && timed('guard: note', () => readNote(note)) !== noted;
    if (guarded) await guardNode(bc.bridge, prepared.gateways!);
    w.guarded = guarded;
    const { got, brMac } = await addressAndHost(w, prepared);
    if (guarded) writeNote(note, noted!);
    const addrs = podAddresses(got.result);
    // A delegated IPAM tells the pod's families only now (its ADD is undone with the rest).
    if (!prepared.gateways)
      checkHostIPs(
        mappings,
        addrs.map((a) => a.cidr.family),
      );
    const routes = podRoutes(addrs, got.result.routes ?? [], bc.isDefaultGateway);
    // The pod's nat rules need only its addresses: they go in while the pod side is wired (nft's start-up
    // and commit, or iptables', hidden behind the pod's `ip`), and are traced after it.
    const [inPod, nat] = await Promise.allSettled([wirePod(w, addrs, routes), addNat(w, addrs, mappings)]);
    if (inPod.status === 'rejected') throw inPod.reason;
    if (nat.status === 'rejected') throw nat.reason;
    for (const st of nat.value) ctx.trace?.step(st, 'note.withPod');
    const iface = (i: Interface): Interface => ({ ...i, mtu });
    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        iface({ name: bc.bridge, mac: brMac }),
        iface({ name: names.hostVeth, mac: names.hostMac }),
        iface({ name: env.ifname, mac: podMac, sandbox: env.netns }),
      ],
      ips: addrs.map((a) => ({ address: a.address, gateway: formatIP(a.gateway), interface: 2 })),
      routes,
      dns: conf.dns ?? got.result.dns,
    };
  } catch (e) {
    hostIp.cancel();
    w.podIp?.cancel();
    await w.rollback.run();
    throw e;
  }
}

/** The note, or undefined when it is missing or cannot be read (then the node is simply checked again). */
function readNote(path: string): string | undefined {
  try {
    return sys().readText(path);
  } catch {
    return undefined;
  }
}

/** Replaced by rename, so a parallel ADD reads the old note or the new one (a `.tmp-` name the store tidies). */
function writeNote(path: string, text: string): void {
  const tmp = `${dirOf(path)}/.tmp-note-${process.pid}`;
  // Only saves the next ADD a check: a failure to write it must not fail (and undo) a pod that is wired.
  try {
    sys().writeText(tmp, text);
    sys().rename(tmp, path);
  } catch (e) {
    try {
      sys().unlink(tmp);
    } catch {
      // nothing to clean up
    }
    log.warn({ err: (e as Error).message, path }, 'cannot write the gateways note: the next ADD checks the node again');
  }
}

/**
 * Runs every step even when one fails, then throws the first failure: DEL must not stop half-way. At the
 * same time: they touch different things (links; nat rules), and each waits in the kernel (deleting a
 * veth, and committing an nftables transaction that deletes elements, each wait ~10-20 ms for RCU), so
 * the waits overlap instead of adding up.
 */
async function runAll(steps: (() => Promise<unknown>)[]): Promise<void> {
  const done = await Promise.allSettled(steps.map((step) => step()));
  const failed = done.find((d) => d.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/**
 * A pod's nat chains, one save/restore per family; `withV6` when the pod may have had an IPv6 address
 * (its chains then have IPv6 twins). Returns a trace step.
 */
async function removePodChains(masq: string[], hostports: string[], withV6 = true): Promise<Step | undefined> {
  const chains = [...masq, ...hostports];
  const v4 = await delChains(chains, false);
  // ip6tables may be absent on IPv4-only nodes
  const v6 = withV6 && chains.length ? await delChains(chains, true).catch(() => []) : [];
  if (!v4.length && !v6.length) return undefined;
  return { id: 'natDel', cmd: [natCommands(false, v4), natCommands(true, v6)].filter(Boolean).join('\n') };
}

/**
 * A DEL's nftables elements: the ones its prevResult (the addresses) and runtimeConfig (the mappings) say
 * ADD made, removed in one transaction with no read first; without a prevResult, the table is read and
 * everything of this owner removed (one list more).
 */
async function removeNftRules(ctx: Context, bc: BridgeConf, names: AttachmentNames, hostports: boolean): Promise<Step | undefined> {
  const ips = ctx.conf.prevResult?.ips ?? [];
  const addrs = ips.flatMap((i) => {
    const c = parseCidr(i.address);
    return c ? [{ ip: formatIP({ family: c.family, value: c.ip }), subnet: formatCidr(c) }] : [];
  });
  let mappings: PortMapping[] = [];
  try {
    mappings = hostports ? parsePortMappings(ctx.conf.runtimeConfig?.portMappings) : [];
  } catch {
    // ADD refused such mappings: it made none
  }
  const known = addrs.length > 0 && (!hostports || Array.isArray(ctx.conf.runtimeConfig?.portMappings));
  const { nftCommands, removeOwners, removePodElements } = await nft();
  const lines = known ? await removePodElements(podRules({ names, bc, ctx }, addrs, mappings)) : await removeOwners(new Set([names.owner]));
  if (!lines.length) return undefined;
  return { id: 'nftDel', cmd: nftCommands(lines) };
}

/** Host veths to delete for the call's own attachment: the derived name, plus any named in prevResult. */
function hostVeths(ctx: Context, a: Attachment): string[] {
  const names = new Set([attachmentNames(ctx.conf.name, a.containerID, a.ifname).hostVeth]);
  for (const i of ctx.conf.prevResult?.interfaces ?? []) {
    if (!i.sandbox && HOST_VETH_RE.test(i.name)) names.add(i.name);
  }
  return [...names];
}

/** Removes what ADD made on the host for the call's own attachment; the pod end of a veth goes with its host end. */
async function teardown(ctx: Context, bc: BridgeConf, a: Attachment): Promise<Step[]> {
  const veths = hostVeths(ctx, a);
  const names = attachmentNames(ctx.conf.name, a.containerID, a.ifname);
  const steps: Step[] = [];
  await runAll([
    async () => {
      const missing = await deleteLinks(veths);
      for (const n of veths) {
        steps.push(
          missing.includes(n)
            ? { id: 'vethGone', p: { host: n } }
            : { id: 'vethDel', p: { host: n, ifname: a.ifname }, cmd: ipCommand(`link del dev ${n}`) },
        );
      }
    },
    async () => {
      const hostports = mayHaveHostports(ctx);
      if ((bc.ipMasq || hostports) && firewallFor(ctx.conf, bc) === 'nftables') {
        const step = await removeNftRules(ctx, bc, names, hostports);
        if (step) steps.push(step);
        return;
      }
      // It had IPv6 rules only if its result had an IPv6 address (when DEL carries the result).
      const ips = ctx.conf.prevResult?.ips;
      const withV6 = !ips?.length || ips.some((i) => i.address.includes(':'));
      const step = await removePodChains(bc.ipMasq ? [names.masqChain] : [], hostports ? [names.hostportChain] : [], withV6);
      if (step) steps.push(step);
    },
  ]);
  return steps;
}

/**
 * The same for attachments other than the call's own (GC, reclaim), whose prevResult and runtimeConfig
 * this call does not have: their derived veths, and their nat chains whether or not they had any — all of
 * them at once: one `ip` and one save/restore per family, however many there are (a node back from a
 * reboot may reclaim a hundred).
 */
async function teardownOthers(ctx: Context, bc: BridgeConf, owners: Attachment[]): Promise<void> {
  const names = owners.map((a) => attachmentNames(ctx.conf.name, a.containerID, a.ifname));
  const useNft = firewallFor(ctx.conf, bc) === 'nftables';
  await runAll([
    () => deleteLinks(names.map((n) => n.hostVeth)),
    // One list of the table and one transaction, however many owners.
    async () => (useNft ? (await nft()).removeOwners(new Set(names.map((n) => n.owner))) : []),
    async () =>
      useNft ||
      removePodChains(
        bc.ipMasq ? names.map((n) => n.masqChain) : [],
        names.map((n) => n.hostportChain),
      ),
  ]);
}

async function del(ctx: Context): Promise<void> {
  const bc = parseBridgeConf(ctx.conf);
  // The host veth's deletion is started first (the kernel takes ~20 ms over it) and the address released
  // while it runs; both finish even if one fails: whatever else goes wrong, the IP must not leak.
  const removing = teardown(ctx, bc, ctx.env);
  const [removed, released] = await Promise.allSettled([removing, ipamFor(ctx).del(ctx)]);
  if (released.status === 'fulfilled') ctx.trace?.step(released.value, 'note.withHostDel');
  if (removed.status === 'fulfilled') for (const s of removed.value) ctx.trace?.step(s);
  for (const o of [released, removed]) if (o.status === 'rejected') throw o.reason;
}

function checkFailed(msg: string): CniError {
  return new CniError(Code.CheckFailed, `CHECK failed: ${msg}`);
}

const sameDst = (a: string, b: string): boolean =>
  a === b || ((a === 'default' || a === '0.0.0.0/0' || a === '::/0') && (b === 'default' || b === '0.0.0.0/0' || b === '::/0'));

async function check(ctx: Context): Promise<void> {
  const { env, conf } = ctx;
  const bc = parseBridgeConf(conf);
  const prev = conf.prevResult;
  if (!prev) throw invalidConfig('prevResult', 'missing: CHECK needs the result of ADD');
  requireNetns(env.netns);
  const host = attachmentNames(conf.name, env.containerID, env.ifname).hostVeth;
  const v6 = (prev.routes ?? []).some((r) => r.dst.includes(':'));
  const [onHost, inPod] = await Promise.all([
    readState(undefined),
    readState(env.netns, { routes: 'table main', routes6: v6 }),
    ipamFor(ctx).check(ctx),
  ]);

  // The pod's side first: its interface is what the workload sees, and when it is gone the host end of
  // the pair went with it, so naming the pod's interface points at the cause.
  const eth = linkByName(inPod.links, env.ifname);
  if (!eth) throw checkFailed(`interface ${env.ifname} is missing in ${env.netns}`);
  if (!isUp(eth)) throw checkFailed(`interface ${env.ifname} is down`);
  const podIf = prev.interfaces?.find((i) => i.sandbox && i.name === env.ifname);
  if (podIf?.mac && eth.address?.toLowerCase() !== podIf.mac.toLowerCase()) {
    throw checkFailed(`interface ${env.ifname} has MAC ${eth.address}, prevResult says ${podIf.mac}`);
  }
  for (const ip of prev.ips ?? []) {
    const [addr, prefix] = ip.address.split('/');
    if (!eth.addr_info?.some((a) => a.local === addr && String(a.prefixlen) === prefix)) {
      throw checkFailed(`address ${ip.address} is missing on ${env.ifname}`);
    }
  }
  for (const r of prev.routes ?? []) {
    if (!inPod.routes.some((k) => sameDst(k.dst, r.dst) && (!r.gw || k.gateway === r.gw))) {
      throw checkFailed(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} is missing in ${env.netns}`);
    }
  }

  if (!linkByName(onHost.links, bc.bridge)) throw checkFailed(`bridge ${bc.bridge} is missing`);
  const veth = linkByName(onHost.links, host);
  if (!veth) throw checkFailed(`host veth ${host} is missing`);
  if (veth.master !== bc.bridge) throw checkFailed(`host veth ${host} is not attached to ${bc.bridge}`);
}

async function gc(ctx: Context): Promise<void> {
  const bc = parseBridgeConf(ctx.conf);
  // Host-side leftovers of the attachments collected go first, then their addresses.
  await ipamFor(ctx).gc(ctx, validAttachments(ctx), (owners) => teardownOthers(ctx, bc, owners));
}

async function status(ctx: Context): Promise<void> {
  const bc = parseBridgeConf(ctx.conf);
  await ipamFor(ctx).status(ctx, reclaimHooks(ctx, bc));
}

/**
 * How podwire tells the IPAM that a reserved address's pod is gone, for reclaiming it when the slice is
 * full: every podwire pod has a host veth whose name derives from its attachment, and the kernel deletes
 * it with the pod's namespace. So a reservation (old enough not to be an ADD in flight) whose veth is
 * missing belongs to a pod whose namespace was deleted without a DEL. What it left besides the address
 * (hostPort and masquerade rules) goes with it.
 */
function reclaimHooks(ctx: Context, bc: BridgeConf): ReclaimHooks {
  return {
    async gone(owners) {
      const { links } = await readState(undefined);
      const present = new Set(links.map((l) => l.ifname));
      return owners.map((o) => {
        const veth = attachmentNames(ctx.conf.name, o.containerID, o.ifname).hostVeth;
        return present.has(veth) ? undefined : `its host veth ${veth} is gone: the pod's network namespace was deleted without a DEL`;
      });
    },
    cleanup: (owners) => teardownOthers(ctx, bc, owners),
  };
}

export const bridgePlugin: Plugin = { add, del, check, gc, status };
