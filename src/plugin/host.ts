// The host side of a pod: the bridge holding the gateway address(es), and the veth pair whose pod end is
// made directly inside the pod's namespace. And the check that a wrong config never makes the node a pod.
import { CniError, Code, invalidConfig } from '../cni/errors.js';
import { type Cidr, type IP, formatCidr } from '../net/ip.js';
import type { Step } from '../kernel/step.js';
import type { Msg } from '../i18n/index.js';
import { type BridgeSpec, type VethSpec, bridgeLines, bridgeMac, localLinks, vethLines } from '../kernel/links.js';
import { IpBatchError, type PendingBatch, ipBatch, ipCommand, startIpBatch } from '../kernel/run.js';
import { kind, linkByName, readState } from '../kernel/state.js';
import { subnetClash } from '../kernel/guard.js';
import { dirOf, sys } from '../runtime/files.js';
import { log } from '../runtime/log.js';
import { timed } from '../runtime/profile.js';
import type { IpStep } from '../kernel/step.js';

/** A slice's gateway on the bridge; `field` says where the slice was given. */
export type Gateway = { subnet: Cidr; ip: IP; field?: string };

/** What one `ip -batch` did, for Trace.batch: steps (as single commands), ms, and the failing line. */
export type BatchRecord = [steps: Step[], ms: number, failedLine?: number, error?: string];

/**
 * Applies steps with one `ip -batch` (in `netns`, or on the host) and, when tracing, hands `record` what
 * happened. Without a trace nothing is formatted (ipCommand looks at the filesystem for each line).
 */
export async function apply(
  batch: PendingBatch,
  steps: IpStep[],
  netns: string | undefined,
  record: ((r: BatchRecord) => void) | undefined,
): Promise<void> {
  const started = performance.now();
  const shown = (): Step[] => steps.map((s) => ({ ...s, cmd: ipCommand(s.cmd, netns) }));
  try {
    await batch.applySteps(steps);
  } catch (e) {
    record?.([shown(), performance.now() - started, (e instanceof IpBatchError && e.line) || steps.length, (e as Error).message]);
    throw e;
  }
  record?.([shown(), performance.now() - started]);
}

export const notABridge = (bridge: string, k: string | undefined): CniError =>
  invalidConfig(
    'bridge',
    `${bridge} exists and is not a bridge (it is ${k ? `a ${k} device` : 'a device of another kind'}): it is not podwire's, and the pods' ` +
      'gateway address must not go on it (nothing was changed)',
  );

/**
 * The node is not a pod (what a wrong config must never do to it): before podwire makes the bridge, or
 * gives it gateways it has not had, it reads the node's links and default routes (one or two `ip`, on
 * those rare ADDs only) and refuses, changing nothing, a `bridge` that is some other kind of link (the
 * uplink, a VXLAN device, lo: the gateway address would land on it) and a pod subnet that overlaps a
 * network the node is on or holds its default gateway.
 */
export async function guardNode(bridge: string, gws: readonly Gateway[]): Promise<void> {
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

/** The note (in the built-in IPAM's store) of the bridge and gateways last checked against the node's networks. */
const GUARD_NOTE = '.gateways';

/**
 * Whether this ADD's bridge and gateways were checked against the node already (the note, one small file
 * read per ADD, says so), and how to record that they now are.
 */
export function guardNote(
  storeDir: string | undefined,
  bridge: string,
  gws: readonly Gateway[] | undefined,
): { checked: boolean; save(): void } {
  if (!gws || !storeDir) return { checked: true, save: () => {} };
  const path = `${storeDir}/${GUARD_NOTE}`;
  const text = `${bridge} ${gws.map((g) => formatCidr(g.subnet, g.ip.value)).join(' ')}\n`;
  return { checked: timed('guard: note', () => readNote(path)) === text, save: () => writeNote(path, text) };
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
 * The host side's `ip -batch`: the veth pair first, its host end put on the bridge, then the bridge's
 * gateway address(es) and `up`. In that order because `master` is the first step that touches the bridge
 * and the kernel refuses it (EOPNOTSUPP) for a link that is no bridge — before any address lands on a
 * node's uplink, VXLAN device or lo. The bridge exists but for a node's first pod, so the batch assumes it
 * does; when `master` names a missing device, the node is checked (guard) and the batch goes on in a
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
    if (e.step === 'attach' && e.errno === 'notSupported') throw notABridge(bridge.name, undefined);
    if (!(e.errno === 'noDevice' && e.device === bridge.name)) throw e;
    await guard();
    const keep = record && ((r: BatchRecord) => (then = r));
    try {
      await apply(startIpBatch(), [...bridgeLines(bridge, false), ...attach], undefined, keep);
    } catch (e2) {
      if (!(e2 instanceof IpBatchError && e2.step === 'bridgeCreate' && e2.errno === 'exists')) throw e2;
      await apply(startIpBatch(), [...attach, ...bridgeLines(bridge, true)], undefined, keep);
    }
  } finally {
    if (record && first) {
      record(then ? [[first[0][0]!, ...then[0]], first[1] + then[1], then[2] && then[2] + 1, then[3]] : first);
    }
  }
}

export interface HostSide {
  bridge: string;
  mtu: number;
  gateways: readonly Gateway[];
  veth: Omit<VethSpec, 'bridge' | 'mtu' | 'hairpin'>;
  hairpin: boolean;
  /** The node was checked against these gateways already. */
  guarded: boolean;
}

/**
 * The bridge and the veth pair, its pod end made inside the pod as its interface. Returns the bridge's
 * MAC. `keep` registers the veth's undo as soon as it exists, also when a later line fails; an existing
 * host veth or pod interface of that name is someone else's and is refused, and never deleted.
 */
export async function wireHost(
  ip: PendingBatch,
  h: HostSide,
  keep: (label: Msg, undo: () => Promise<unknown>) => void,
  record: ((r: BatchRecord) => void) | undefined,
  podLinks: () => Promise<string[]>,
): Promise<string> {
  const host = h.veth.host;
  const brMac = bridgeMac(h.gateways[0]!.ip);
  const bridge = { name: h.bridge, mtu: h.mtu, mac: brMac, gatewayCidrs: h.gateways.map((g) => formatCidr(g.subnet, g.ip.value)) };
  const veth = vethLines({ ...h.veth, mtu: h.mtu, bridge: h.bridge, hairpin: h.hairpin });
  const undo: [Msg, () => Promise<unknown>] = [
    { id: 'undo.veth', p: { host, ifname: h.veth.peer } },
    () => ipBatch([`link del dev ${host}`]),
  ];
  try {
    // Checked already when the gateways were new to this bridge (add); else now, before the bridge is made.
    await hostBatch(ip, bridge, veth, () => (h.guarded ? Promise.resolve() : guardNode(h.bridge, h.gateways)), record);
  } catch (e) {
    if (e instanceof IpBatchError && e.step === 'veth' && e.errno === 'exists') {
      if ((await podLinks()).includes(h.veth.peer)) {
        throw new CniError(Code.InterfaceExists, `interface ${h.veth.peer} already exists in ${h.veth.netns}`);
      }
      throw new CniError(Code.InterfaceExists, `host interface ${host} already exists (an earlier ADD of this container was not deleted)`);
    }
    // Made before a later line failed?
    if (localLinks().has(host)) keep(...undo);
    throw e;
  }
  keep(...undo);
  return brMac;
}
