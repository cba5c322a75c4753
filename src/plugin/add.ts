// ADD: a pod's network, as a plan (plan.ts) of these actions, each undone if a later one fails:
//
//   guard       the node is not a pod: a new bridge or new gateways are checked against the node's own
//               links and routes first (host.ts guardNode), changing nothing when they clash
//   address     IPAM: an address from the node's slice (built-in allocator, or a delegated IPAM plugin)
//   host        one `ip -batch`: the veth pair (its pod end made directly inside the pod as CNI_IFNAME),
//               its host end on the bridge, the bridge's gateway address (the bridge made if missing)
//   note        the gateways checked, noted for the next ADD (never fails a wired pod)
//   pod         one `ip -batch` in the pod's namespace: lo up, address, link up, routes
//   forwarding  ip_forward (a file in /proc)
//   nat         the pod's nat rules when asked: ipMasq, and hostPorts from runtimeConfig.portMappings
//
//          guard ──► address ──┬──► note
//            └────► host ◄─────┤(delegated IPAM: its gateway comes with the address)
//                     └────────┴──► pod, forwarding, nat (side by side)
//
// With the built-in IPAM the gateway is known from the config, so address and host run side by side.
//
// Processes, the per-pod path's largest cost after the runtime's own start-up (each ~1-2 ms of CPU): 2 —
// `ip -batch` on the host and `ip -n POD -batch` in the pod. Two is the least: an `ip` works in one network
// namespace, and the pod's addresses and routes can only be set from inside its namespace (an interface
// moved in afterwards loses them). Both are started before they are needed and fed later, so their
// start-up overlaps podwire's own work: the host's before the config is even read (started, told
// nothing, it changes nothing), the pod's as soon as the host's has its lines. One more on a node's first
// pod (the bridge is assumed to exist, and made when the kernel says it is missing), and one or two
// reading the node (guard) when the bridge is made or gets gateways it has not been checked with. With
// ipMasq or hostPorts: one `nft` (nftables backend, run while the pod's `ip` works), or, with the iptables
// backend, an iptables-restore per family of the pod and for hostPorts an iptables-save per family. No
// lock (see ipam/allocator.ts), no read of the kernel's state first.
import { invalidConfig, invalidEnv } from '../cni/errors.js';
import type { Context, Interface, Result, Route } from '../cni/types.js';
import { type PreparedAdd, type IpamAdd, ipamFor } from '../ipam/ipam.js';
import { familyOf, formatIP } from '../net/ip.js';
import type { Step } from '../kernel/step.js';
import { type PortMapping } from '../nat/hostport.js';
import { type AttachmentNames, attachmentNames } from '../kernel/names.js';
import { type PendingBatch, startIpBatch } from '../kernel/run.js';
import { readState } from '../kernel/state.js';
import { sys } from '../runtime/files.js';
import { installed } from '../kernel/tools.js';
import { podSysctls } from '../kernel/sysctl.js';
import { timed } from '../runtime/profile.js';
import {
  type BridgeConf,
  DEFAULT_MTU,
  checkNodePorts,
  parseBridgeConf,
  parsePortMappings,
  requestedIP,
  requestedMac,
  reservedHostPorts,
  subnetFileOf,
} from './config.js';
import { localAddresses } from '../kernel/local-addrs.js';
import { type BatchRecord, type Gateway, guardNode, guardNote, wireHost } from './host.js';
import { type PodAddress, forwarding, podAddresses, podRoutes, wirePod } from './pod.js';
import { addNat } from '../nat/pod.js';
import { type Action, Plan, PlanError } from './plan.js';
import { reclaimHooks } from './reclaim.js';
import { gateUp } from '../nodestate/reports.js';
import { bind, bindLines, chooseBindWay, unbindPorts } from '../guard/table.js';

type AddAction = 'guard' | 'address' | 'gate' | 'bind' | 'host' | 'note' | 'pod' | 'forwarding' | 'nat';

/** Refuses a hostIP of a family the pod has no address in (before anything is made). */
function checkHostIPs(mappings: readonly PortMapping[], families: readonly number[]): void {
  mappings.forEach((m, i) => {
    if (m.hostIP && !families.includes(familyOf(m.hostIP))) {
      throw invalidConfig(`runtimeConfig.portMappings[${i}].hostIP`, `${m.hostIP}: the pod has no address of that family`);
    }
  });
}

/**
 * The pod's namespace is never the node's: wired as a pod, the node would get an eth0 with a Pod IP and
 * its default route replaced by one via the pods' gateway. Two stat(2) calls (the same test as `ip netns
 * identify`: device and inode of the namespace files), a few microseconds.
 */
export function requirePodNetns(netns: string): void {
  if (!sys().exists(netns)) throw invalidEnv('CNI_NETNS', `${netns} does not exist`);
  if (timed('netns: not the node', () => sys().sameFile(netns, '/proc/self/ns/net'))) {
    throw invalidEnv('CNI_NETNS', `${netns} is the node's own network namespace (this plugin's), not a pod's: nothing was changed`);
  }
}

/** What ADD knows once its config is read and checked, before it changes anything. */
interface Checked {
  bc: BridgeConf;
  mappings: PortMapping[];
  names: AttachmentNames;
  podMac: string;
  mtu: number;
  prepared: PreparedAdd;
}

/** Bad input changes nothing: everything here is read and checked before the first change. */
async function readAdd(ctx: Context): Promise<Checked> {
  const { env, conf } = ctx;
  const bc = parseBridgeConf(conf);
  const mappings = parsePortMappings(conf.runtimeConfig?.portMappings);
  if (mappings.length) checkNodePorts(mappings, reservedHostPorts(conf), localAddresses);
  const names = attachmentNames(conf.name, env.containerID, env.ifname);
  const podMac = requestedMac(ctx) ?? names.podMac;
  requirePodNetns(env.netns);
  const prepared = await ipamFor(ctx).prepare(ctx, (family) => requestedIP(ctx, family), reclaimHooks(ctx, bc));
  // A hostIP of a family the pod will not have (when the slices are known now; a delegated IPAM's, after it answered).
  if (prepared.gateways)
    checkHostIPs(
      mappings,
      prepared.gateways.map((g) => g.subnet.family),
    );
  return { bc, mappings, names, podMac, prepared, mtu: bc.mtu ?? prepared.mtu ?? DEFAULT_MTU };
}

export async function add(ctx: Context): Promise<Result> {
  const { env, conf } = ctx;
  // The host's `ip` starts first: its start-up (~1 ms) runs while the config is read and checked.
  const hostIp = startIpBatch();
  let c: Checked;
  try {
    c = await readAdd(ctx);
  } catch (e) {
    hostIp.cancel();
    throw e;
  }
  const { bc, names, mtu, mappings, prepared } = c;
  // How the binding will be written: straight to the kernel, or an `nft` started now like the `ip`s.
  let bindWay = bc.spoofChecks && installed('nft') ? chooseBindWay() : undefined;
  const gateways = prepared.gateways;
  const note = guardNote(prepared.storeDir, bc.bridge, gateways);
  const gated = gateUp(subnetFileOf(conf));
  // What the actions hand each other.
  const s: { podIp?: PendingBatch; got?: IpamAdd; addrs?: PodAddress[]; routes?: Route[]; brMac?: string; hostTraced?: boolean } = {};
  // The pod's `ip`: started once the host's has its lines, so its start-up runs while the kernel works.
  const podIp = (): PendingBatch => (s.podIp ??= startIpBatch(env.netns));
  const traced = <T>(record: (r: T) => void, on: boolean) => (on ? record : undefined);

  const actions: Action<AddAction>[] = [
    {
      id: 'guard',
      run: () => (note.checked ? undefined : guardNode(bc.bridge, gateways!)),
    },
    {
      id: 'address',
      after: ['guard'],
      run: async (api) => {
        if (!gateways) podIp();
        const got = await prepared.allocate();
        s.got = got;
        api.keep({ id: 'undo.address' }, got.undo);
        // Traced before the host side, as a reader expects, whichever finished first.
        api.record({ step: got.step, note: () => (gateways && s.hostTraced ? 'note.withHost' : undefined) });
        s.addrs = podAddresses(got.result);
        // A delegated IPAM tells the pod's families only now (its address is undone with the rest).
        if (!gateways)
          checkHostIPs(
            mappings,
            s.addrs.map((a) => a.cidr.family),
          );
        s.routes = podRoutes(s.addrs, got.result.routes ?? [], bc.isDefaultGateway);
      },
    },
    {
      id: 'host',
      after: gateways ? ['guard'] : ['guard', 'address'],
      run: async (api) => {
        const gws: Gateway[] = gateways ?? s.addrs!.map((a) => ({ subnet: a.cidr, ip: a.gateway }));
        const record = traced((r: BatchRecord) => {
          s.hostTraced = true;
          api.record({ batch: r });
        }, api.tracing);
        const wiring = wireHost(
          hostIp,
          {
            bridge: bc.bridge,
            mtu,
            gateways: gws,
            veth: {
              host: names.hostVeth,
              hostMac: names.hostMac,
              peer: env.ifname,
              peerMac: c.podMac,
              netns: env.netns,
            },
            hairpin: bc.hairpinMode,
            guarded: !note.checked,
          },
          api.keep,
          record,
          async () => (await readState(env.netns)).links.map((l) => l.ifname),
        );
        podIp();
        s.brMac = await wiring;
      },
    },
    {
      // NetworkPolicies enforced here: the pod is held (policy/gate.ts) before it has an address to send from.
      id: 'gate',
      after: ['address'],
      run: async (api) => {
        if (!gated) return;
        const ips = s.addrs!.map((a) => formatIP(a.ip));
        const { gateApply, holdLines, releaseLines } = await import('../policy/gate.js');
        if (!(await gateApply(holdLines(ips)))) return; // the gate went meanwhile: no policy to hold it for
        api.keep({ id: 'undo.gate' }, () => gateApply(releaseLines(ips)));
        api.record({
          step: {
            id: 'gateHold',
            p: { ips: ips.join(', ') },
            cmd: holdLines(ips)
              .map((l) => `nft ${l}`)
              .join('\n'),
          },
        });
      },
    },
    {
      // The pod's identity on its port (guard/table.ts), before it has an address to send from: its MAC
      // and addresses, checked where its frames enter the node.
      id: 'bind',
      after: ['address'],
      run: async (api) => {
        if (!bc.spoofChecks) return api.record({ step: { id: 'bindOff' } });
        if (!bindWay) return api.record({ step: { id: 'bindNoNft' } });
        const b = { port: names.hostVeth, mac: c.podMac, ips: s.addrs!.map((a) => formatIP(a.ip)) };
        api.keep({ id: 'undo.bind' }, () => unbindPorts([b.port], [b]));
        const way = bindWay;
        bindWay = undefined;
        const { netlink } = await bind(b, way);
        api.record({
          step: {
            id: 'bind',
            p: {
              host: names.hostVeth,
              mac: c.podMac,
              ips: b.ips.join(', '),
              how: { id: netlink ? ('step.bind.netlink' as const) : ('step.bind.nft' as const) },
            },
            // The words only for a trace: the netlink way never makes them.
            cmd: api.tracing
              ? bindLines([b])
                  .map((l) => `nft ${l}`)
                  .join('\n')
              : '',
          },
        });
      },
    },
    { id: 'note', after: ['host', 'address'], run: () => (note.checked ? undefined : note.save()) },
    {
      id: 'pod',
      after: ['host', 'address', 'gate', 'bind'],
      run: (api) => {
        // Before its interface comes up (in the batch below): no router advertisement taken. Hardening, not
        // wiring: a namespace this process cannot enter leaves the pod as it was, and the ADD goes on.
        const set = timed('sysctl (pod)', () => {
          try {
            return podSysctls(env.netns, env.ifname);
          } catch {
            return undefined;
          }
        });
        api.record({
          step: set
            ? { id: 'podSysctl', p: { set: set.join(' '), ifname: env.ifname }, cmd: set.map((x) => `sysctl -w ${x}`).join('\n') }
            : { id: 'podSysctlNo' },
        });
        return wirePod(
          podIp(),
          env.netns,
          env.ifname,
          s.addrs!,
          s.routes!,
          prepared.podsViaNode === true,
          traced((r: BatchRecord) => api.record({ batch: r }), api.tracing),
        );
      },
    },
    {
      id: 'forwarding',
      after: ['host', 'address'],
      run: (api) => {
        const f = forwarding(s.addrs!);
        api.record({ step: f.step, note: f.changed ? undefined : 'note.forwardingOn' });
      },
    },
    {
      id: 'nat',
      after: ['host', 'address'],
      run: async (api) => {
        // The nat rules need only the pod's addresses: they go in while the pod side is wired (nft's
        // start-up and commit, or iptables', hidden behind the pod's `ip`), and are traced after it.
        const steps: Step[] = await addNat({ names, bc, ctx }, s.addrs!, mappings, api.keep);
        for (const step of steps) api.record({ step, note: 'note.withPod' });
      },
    },
  ];
  // With the gateways known, the host side's lines go to its `ip` before the address is taken (files only,
  // no process), so the kernel works on the veth meanwhile; the trace still tells the address first.
  const order: AddAction[] = [
    'guard',
    ...(gateways ? (['host', 'address'] as const) : (['address', 'host'] as const)),
    'gate',
    'bind',
    'note',
    'pod',
    'forwarding',
    'nat',
  ];
  try {
    await new Plan<AddAction>({ id: 'call.add', p: { containerID: env.containerID, ifname: env.ifname } }, ctx.trace).run(
      order.map((id) => actions.find((a) => a.id === id)!),
      actions.map((a) => a.id),
    );
  } catch (e) {
    hostIp.cancel();
    s.podIp?.cancel();
    if (bindWay && bindWay !== 'netlink') void bindWay.finish().catch(() => undefined);
    throw e instanceof PlanError ? e.cause : e;
  }
  const iface = (i: Interface): Interface => ({ ...i, mtu });
  return {
    cniVersion: conf.cniVersion,
    interfaces: [
      iface({ name: bc.bridge, mac: s.brMac! }),
      iface({ name: names.hostVeth, mac: names.hostMac }),
      iface({ name: env.ifname, mac: c.podMac, sandbox: env.netns }),
    ],
    ips: s.addrs!.map((a) => ({ address: a.address, gateway: formatIP(a.gateway), interface: 2 })),
    routes: s.routes!,
    dns: conf.dns ?? s.got!.result.dns,
  };
}
