// The podwire plugin: a veth pair from the pod's namespace to the node's bridge, addresses from IPAM.
//
// ADD, each step undone if a later one fails:
//   1. IPAM: an address from the node's slice (built-in allocator, or a delegated IPAM plugin)
//   2. host side, one `ip -batch`: bridge (created if missing) with the gateway address and a pinned MAC,
//      then the veth pair (peer created directly as CNI_IFNAME inside the pod), host end on the bridge.
//      With the built-in IPAM the gateway is known from the config, so 1 and 2 run at the same time.
//   3. pod side, one `ip -batch` in the pod's namespace: lo up, address, link up, routes
//   4. ip_forward, and the optional ipMasq chain
//   5. hostPorts from runtimeConfig.portMappings (capabilities.portMappings), in podwire's own nat chains
import { statSync } from 'node:fs';
import { CniError, Code, invalidConfig, invalidEnv } from '../cni/errors.js';
import type { Attachment, Context, Interface, Plugin, Result, Route } from '../cni/types.js';
import { type IpamAdd, ipamFor } from '../ipam/ipam.js';
import { type Cidr, type IP, formatCidr, formatIP, parseCidr, parseIP } from '../net/ip.js';
import type { Step, Trace } from '../cni/trace.js';
import {
  type BridgeSpec,
  HOST_VETH_RE,
  type IpStep,
  bridgeLines,
  bridgeMac,
  cmds,
  gatewayStep,
  hostVethName,
  localLinks,
  podLines,
  randomMac,
  vethLines,
} from '../kernel/links.js';
import { delChains, natCommands } from '../kernel/chains.js';
import { addHostports, hostportChain, hostportStep, parsePortMappings } from '../kernel/hostport.js';
import { addMasq, masqChain, masqStep } from '../kernel/masq.js';
import { IpBatchError, ipBatch, ipCommand, ipJson, isExists, isNoSuchDevice } from '../kernel/run.js';
import { FORWARDING_STEP, ensureSysctl } from '../kernel/sysctl.js';
import { log } from '../log.js';
import { timed } from '../profile.js';
import { type BridgeConf, DEFAULT_MTU, parseBridgeConf, requestedMac } from './config.js';

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
  try {
    statSync(netns);
  } catch (e) {
    throw invalidEnv('CNI_NETNS', `cannot open ${netns}: ${(e as NodeJS.ErrnoException).code}`);
  }
}

/** Names of the links in the pod's namespace (slow path only: explaining a failed ADD, CHECK). */
async function podLinks(netns: string): Promise<string[]> {
  const [addrs = []] = await ipJson(['addr show'], netns);
  return (addrs as { ifname: string }[]).map((l) => l.ifname);
}

/** What one `ip -batch` did, for Trace.batch: steps (as single commands), ms, and the failing line. */
type BatchRecord = [steps: Step[], ms: number, failedLine?: number, error?: string];

/**
 * Applies steps with one `ip -batch` (in `netns`, or on the host) and, when tracing, hands `record` what
 * happened. Without a trace nothing is formatted (ipCommand looks at the filesystem for each line).
 */
async function apply(steps: IpStep[], netns: string | undefined, record: ((r: BatchRecord) => void) | undefined): Promise<void> {
  const started = performance.now();
  const shown = (): Step[] => steps.map((s) => ({ ...s, cmd: ipCommand(s.cmd, netns) }));
  try {
    await ipBatch(cmds(steps), netns);
  } catch (e) {
    record?.([shown(), performance.now() - started, (e instanceof IpBatchError && e.line) || steps.length, (e as Error).message]);
    throw e;
  }
  record?.([shown(), performance.now() - started]);
}

/** Runs the host-side batch; a bridge created by a parallel ADD in the meantime is not an error. */
async function wireHost(bridge: BridgeSpec, steps: IpStep[], record: ((r: BatchRecord) => void) | undefined): Promise<void> {
  const exists = localLinks().has(bridge.name);
  try {
    await apply([...bridgeLines(bridge, exists), ...steps], undefined, record);
  } catch (e) {
    if (exists || !(isExists(e) && (e as IpBatchError).line === 1)) throw e;
    await apply([...bridgeLines(bridge, true), ...steps], undefined, record);
  }
}

async function add(ctx: Context): Promise<Result> {
  const { env, conf } = ctx;
  const bc = parseBridgeConf(conf);
  const podMac = requestedMac(ctx) ?? randomMac();
  const mappings = parsePortMappings(conf.runtimeConfig?.portMappings);
  requireNetns(env.netns);
  const prepared = ipamFor(ctx).prepare(ctx);
  const mtu = bc.mtu ?? prepared.mtu ?? DEFAULT_MTU;
  const host = hostVethName(conf.name, env.containerID, env.ifname);
  const hostMac = randomMac();

  let got: IpamAdd | undefined;
  let vethCreated = false;
  let masq: string | undefined;
  let hostports: string | undefined;
  const trace = ctx.trace;
  let hostBatch: BatchRecord | undefined;
  /** Step 2: bridge and veth. Needs only the gateway, not the pod's address. */
  const wire = async (gateways: { subnet: Cidr; ip: IP }[]): Promise<string> => {
    const [primary, ...more] = gateways;
    const brMac = bridgeMac(primary!.ip.value);
    const bridge = { name: bc.bridge, mtu, mac: brMac, gatewayCidr: formatCidr(primary!.subnet, primary!.ip.value) };
    const veth = vethLines({ host, hostMac, peer: env.ifname, peerMac: podMac, netns: env.netns, mtu, bridge: bc.bridge, hairpin: bc.hairpinMode });
    const extra = more.map((g) => gatewayStep(formatCidr(g.subnet, g.ip.value), bc.bridge));
    try {
      await wireHost(bridge, [...extra, ...veth], trace && ((r) => (hostBatch = r)));
      vethCreated = true;
    } catch (e) {
      if (isExists(e) && (e as IpBatchError).command.startsWith(`link add name ${host} `)) {
        if ((await podLinks(env.netns)).includes(env.ifname)) {
          throw new CniError(Code.InterfaceExists, `interface ${env.ifname} already exists in ${env.netns}`);
        }
        throw new CniError(Code.InterfaceExists, `host interface ${host} already exists (an earlier ADD of this container was not deleted)`);
      }
      vethCreated = localLinks().has(host); // created before a later line failed
      throw e;
    }
    return brMac;
  };

  try {
    let brMac: string;
    try {
      if (prepared.gateway) {
        // Built-in IPAM: the host-side `ip` is started first, and the address is taken (files only, no
        // process) while it runs.
        const wired = wire([prepared.gateway]);
        const [w, a] = await Promise.allSettled([wired, prepared.allocate().then((g) => (got = g))]);
        if (a.status === 'rejected') throw a.reason;
        if (w.status === 'rejected') throw w.reason;
        brMac = w.value;
      } else {
        got = await prepared.allocate();
        brMac = await wire(podAddresses(got.result).map((a) => ({ subnet: a.cidr, ip: a.gateway })));
      }
    } finally {
      // Traced in the order a reader expects (address, then host side), whichever finished first.
      if (got) trace?.step(got.step, prepared.gateway && hostBatch ? 'ran at the same time as the host-side steps below' : undefined);
      if (hostBatch) trace?.batch(...hostBatch);
    }
    const addrs = podAddresses(got!.result);

    // Step 3: inside the pod.
    const routes = podRoutes(addrs, got!.result.routes ?? [], bc.isDefaultGateway);
    await apply(podLines({ ifname: env.ifname, addresses: addrs.map((a) => a.address), routes }), env.netns, trace && ((r) => trace.batch(...r)));
    // Step 4: forwarding, and masquerade when asked.
    const forwarding = timed('sysctl', () => ensureSysctl('net/ipv4/ip_forward', '1'));
    trace?.step(FORWARDING_STEP, forwarding ? undefined : 'it was on already: nothing written');
    if (addrs.some((a) => a.cidr.family === 6)) ensureSysctl('net/ipv6/conf/all/forwarding', '1');
    if (bc.ipMasq) {
      masq = masqChain(conf.name, env.containerID, env.ifname);
      for (const a of addrs) {
        const lines = await addMasq(masq, formatIP(a.ip), formatCidr(a.cidr));
        trace?.step(masqStep(formatIP(a.ip), formatCidr(a.cidr), lines));
      }
    }
    // Step 5: hostPorts, when the runtime asked for them (capabilities.portMappings).
    if (mappings.length) {
      const v4 = addrs.find((a) => a.cidr.family === 4);
      if (!v4) throw invalidConfig('runtimeConfig.portMappings', 'hostPorts need an IPv4 pod address');
      hostports = hostportChain(conf.name, env.containerID, env.ifname);
      const done = await addHostports(hostports, mappings, formatIP(v4.ip), formatCidr(v4.cidr));
      trace?.step(hostportStep(mappings, formatIP(v4.ip), done));
    }

    const iface = (i: Interface): Interface => ({ ...i, mtu });
    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        iface({ name: bc.bridge, mac: brMac }),
        iface({ name: host, mac: hostMac }),
        iface({ name: env.ifname, mac: podMac, sandbox: env.netns }),
      ],
      ips: addrs.map((a) => ({ address: a.address, gateway: formatIP(a.gateway), interface: 2 })),
      routes,
      dns: conf.dns ?? got!.result.dns,
    };
  } catch (e) {
    await undo(`ADD of ${env.containerID}/${env.ifname}`, trace, [
      ["remove the pod's nat chains", async () => !!(masq || hostports) && (await removePodChains(masq ? [masq] : [], hostports ? [hostports] : []), true)],
      [`delete ${host} (its ${env.ifname} end goes with it)`, async () => vethCreated && (await ipBatch([`link del dev ${host}`]), true)],
      ['release the address', async () => !!got && (await got.undo(), true)],
    ]);
    throw e;
  }
}

/**
 * Runs every cleanup step even when one fails; returns the first error (undo of a failed ADD logs them).
 * A step returns false when it had nothing to do (it is then left out of the trace).
 */
async function undo(what: string, trace: Trace | undefined, steps: [label: string, run: () => Promise<boolean>][]): Promise<unknown> {
  let first: unknown;
  for (const [label, step] of steps) {
    try {
      if (await step()) trace?.step({ what: `undo: ${label}`, why: `${what} failed: it leaves nothing behind` });
    } catch (e) {
      log.warn({ err: (e as Error).message }, `cleanup step of ${what} failed`);
      trace?.step({ what: `undo: ${label} FAILED: ${(e as Error).message}`, why: `${what} failed` });
      first ??= e;
    }
  }
  return first;
}

/** A pod's nat chains, IPv4 in one save/restore; masquerade chains may have IPv6 twins. Returns a trace step. */
async function removePodChains(masq: string[], hostports: string[]): Promise<Step | undefined> {
  const v4 = await delChains([...masq, ...hostports], false);
  const v6 = masq.length ? await delChains(masq, true).catch(() => []) : []; // ip6tables may be absent on IPv4-only nodes
  if (!v4.length && !v6.length) return undefined;
  return {
    what: "remove the pod's nat chains (masquerade, hostPorts)",
    cmd: [natCommands(false, v4), natCommands(true, v6)].filter(Boolean).join('\n'),
    why: 'rules naming a Pod IP that is about to be handed to another pod must go with this one',
  };
}

/** Host veths to delete for an attachment: the derived name, plus any named in prevResult. */
function hostVeths(ctx: Context, a: Attachment): string[] {
  const names = new Set([hostVethName(ctx.conf.name, a.containerID, a.ifname)]);
  for (const i of ctx.conf.prevResult?.interfaces ?? []) {
    if (!i.sandbox && HOST_VETH_RE.test(i.name)) names.add(i.name);
  }
  return [...names];
}

/**
 * Whether the attachment may have hostPort rules to remove (finding them costs an iptables-save). Runtimes
 * send DEL the runtimeConfig they sent ADD (libcni injects capability arguments on every verb; containerd
 * and CRI-O pass the sandbox's port mappings again), so an empty or null portMappings means ADD made none:
 * the reference portmap plugin relies on the same. A DEL without the key at all, from a config that
 * declares the capability, looks anyway; GC always looks.
 */
function mayHaveHostports(ctx: Context): boolean {
  const rc = ctx.conf.runtimeConfig;
  if (ctx.env.command !== 'GC' && rc && 'portMappings' in rc) return Array.isArray(rc.portMappings) && rc.portMappings.length > 0;
  return (ctx.conf.capabilities as Record<string, unknown> | undefined)?.portMappings === true || Array.isArray(rc?.portMappings);
}

/** Removes what ADD made on the host for an attachment; the pod end of a veth goes with its host end. */
async function teardown(ctx: Context, bc: BridgeConf, a: Attachment): Promise<Step[]> {
  const present = localLinks();
  const names = hostVeths(ctx, a);
  const gone = names.filter((n) => present.has(n));
  const steps: Step[] = [];
  const err = await undo(`teardown of ${a.containerID}/${a.ifname}`, undefined, [
    // A veth whose pod namespace was just deleted vanishes on its own, a moment later (the kernel tears the
    // namespace down asynchronously): "Cannot find device" between the read and the delete is success.
    [
      'delete the host veth',
      async () => {
        for (const n of gone) {
          await ipBatch([`link del dev ${n}`]).catch((e: unknown) => {
            if (!isNoSuchDevice(e)) throw e;
          });
          steps.push({
            what: `delete the host end ${n} of the veth pair`,
            cmd: ipCommand(`link del dev ${n}`),
            why: `deleting one end of a veth pair deletes both: the pod's ${a.ifname} goes with it, so DEL works even when the pod's namespace is gone`,
          });
        }
        if (!gone.length) steps.push({ what: `the host end ${names[0]} is gone already`, why: "the pod's namespace was deleted first, and the kernel removed the pair with it" });
        return true;
      },
    ],
    [
      "remove the pod's nat chains",
      async () => {
        const step = await removePodChains(
          bc.ipMasq ? [masqChain(ctx.conf.name, a.containerID, a.ifname)] : [],
          mayHaveHostports(ctx) ? [hostportChain(ctx.conf.name, a.containerID, a.ifname)] : [],
        );
        if (step) steps.push(step);
        return true;
      },
    ],
  ]);
  if (err) throw err;
  return steps;
}

async function del(ctx: Context): Promise<void> {
  const bc = parseBridgeConf(ctx.conf);
  // The host veth's deletion is started first (the kernel takes ~20 ms over it) and the address released
  // while it runs; both finish even if one fails: whatever else goes wrong, the IP must not leak.
  const removing = teardown(ctx, bc, ctx.env);
  const [removed, released] = await Promise.allSettled([removing, ipamFor(ctx).del(ctx)]);
  if (released.status === 'fulfilled') ctx.trace?.step(released.value, 'at the same time as the host-side steps below');
  if (removed.status === 'fulfilled') for (const s of removed.value) ctx.trace?.step(s);
  for (const o of [released, removed]) if (o.status === 'rejected') throw o.reason;
}

function checkFailed(msg: string): CniError {
  return new CniError(Code.CheckFailed, `CHECK failed: ${msg}`);
}

const sameDst = (a: string, b: string): boolean =>
  a === b || ((a === 'default' || a === '0.0.0.0/0' || a === '::/0') && (b === 'default' || b === '0.0.0.0/0' || b === '::/0'));

interface JsonLink {
  ifname: string;
  master?: string;
  operstate?: string;
  flags?: string[];
  address?: string;
  addr_info?: { local: string; prefixlen: number }[];
}

async function check(ctx: Context): Promise<void> {
  const { env, conf } = ctx;
  const bc = parseBridgeConf(conf);
  const prev = conf.prevResult;
  if (!prev) throw invalidConfig('prevResult', 'missing: CHECK needs the result of ADD');
  requireNetns(env.netns);
  const host = hostVethName(conf.name, env.containerID, env.ifname);
  const v6 = (prev.routes ?? []).some((r) => r.dst.includes(':'));
  const [[hostLinks = []], [podAddrs = [], podRoutes4 = []], [podRoutes6 = []]] = await Promise.all([
    ipJson(['addr show']),
    ipJson(['addr show', 'route show table main'], env.netns),
    v6 ? ipJson(['route show table main'], env.netns, ['-6']) : [[]],
    ipamFor(ctx).check(ctx),
  ]);
  const podRoutesNow = [...podRoutes4, ...podRoutes6];

  // The pod's side first: its interface is what the workload sees, and when it is gone the host end of
  // the pair went with it, so naming the pod's interface points at the cause.
  const eth = (podAddrs as JsonLink[]).find((l) => l.ifname === env.ifname);
  if (!eth) throw checkFailed(`interface ${env.ifname} is missing in ${env.netns}`);
  if (!eth.flags?.includes('UP')) throw checkFailed(`interface ${env.ifname} is down`);
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
  const routes = podRoutesNow as { dst: string; gateway?: string; dev?: string }[];
  for (const r of prev.routes ?? []) {
    if (!routes.some((k) => sameDst(k.dst, r.dst) && (!r.gw || k.gateway === r.gw))) {
      throw checkFailed(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} is missing in ${env.netns}`);
    }
  }

  const links = hostLinks as JsonLink[];
  if (!links.some((l) => l.ifname === bc.bridge)) throw checkFailed(`bridge ${bc.bridge} is missing`);
  const veth = links.find((l) => l.ifname === host);
  if (!veth) throw checkFailed(`host veth ${host} is missing`);
  if (veth.master !== bc.bridge) throw checkFailed(`host veth ${host} is not attached to ${bc.bridge}`);
}

async function gc(ctx: Context): Promise<void> {
  const bc = parseBridgeConf(ctx.conf);
  const released = await ipamFor(ctx).gc(ctx);
  // Host-side leftovers of the attachments whose addresses were just collected.
  for (const a of released) await teardown(ctx, bc, a);
}

async function status(ctx: Context): Promise<void> {
  parseBridgeConf(ctx.conf);
  await ipamFor(ctx).status(ctx);
}

export const bridgePlugin: Plugin = { add, del, check, gc, status };
