// Device offloads through ethtool(8): the one podwire cares about is TX checksum offload on the VXLAN
// device. With it on, kernels before 5.7 send VXLAN-encapsulated packets that kube-proxy's `MASQUERADE
// --random-fully` rewrote with a wrong UDP checksum, and the receiver drops them (the "63-second delay"
// to Services over VXLAN). Off, every packet's checksum is computed in software: the overlay runs at a
// fraction of the wire's speed (measured here: 0.11-0.14x of the underlay off, 0.63-0.78x on). So it is
// decided per node: on where the kernel has the fix, off where it has not, as Calico does since 2024.
import type { Msg } from '../i18n/index.js';
import { release } from 'node:os';
import { kernelAtLeast } from './tools.js';
import { commandFailed } from './errors.js';
import { run } from '../runtime/run.js';

const FEATURE = 'tx-checksum-ip-generic';

/** Whether TX checksum offload is on; undefined when ethtool is not installed or the device has no such feature. */
export async function txChecksum(dev: string): Promise<boolean | undefined> {
  const r = await run('ethtool', ['-k', dev]).catch(() => undefined);
  const m = r?.code === 0 ? new RegExp(`^\\s*${FEATURE}: (on|off)`, 'm').exec(r.stdout) : null;
  return m ? m[1] === 'on' : undefined;
}

export async function setTxChecksum(dev: string, on: boolean): Promise<void> {
  const r = await run('ethtool', ['-K', dev, FEATURE, on ? 'on' : 'off']);
  if (r.code !== 0) throw commandFailed(`ethtool -K ${dev} ${FEATURE}`, r.stderr);
}

/** The command line that turns it on or off, for people. */
export const txChecksumSet = (dev: string, on: boolean): string[] => ['ethtool', '-K', dev, FEATURE, on ? 'on' : 'off'];

export type OffloadSetting = 'auto' | 'on' | 'off';
export const OFFLOAD_SETTINGS: readonly OffloadSetting[] = ['auto', 'on', 'off'];

/** A kernel release ("6.1.0-18-amd64", "4.18.0-553.el8") before 5.7, which lacks the fix; undefined when it cannot be read. */
export function kernelAffected(rel: string): boolean | undefined {
  const fixed = kernelAtLeast(rel, [5, 7]);
  return fixed === undefined ? undefined : !fixed;
}

export interface OffloadDecision {
  on: boolean;
  /** Why, as a message of the catalogues (src/i18n): put into words by whoever shows it. */
  why: Msg;
}

/** On or off, and why: `auto` follows the kernel; a release that cannot be read keeps the workaround. */
export function offloadDecision(setting: OffloadSetting, rel = release()): OffloadDecision {
  if (setting !== 'auto') return { on: setting === 'on', why: { id: 'offload.setting', p: { setting } } };
  const affected = kernelAffected(rel);
  if (affected === undefined) return { on: false, why: { id: 'offload.unreadable', p: { rel } } };
  return affected ? { on: false, why: { id: 'offload.affected', p: { rel } } } : { on: true, why: { id: 'offload.fixed', p: { rel } } };
}
