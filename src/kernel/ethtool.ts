// Device offloads through ethtool(8): the one podwire cares about is TX checksum offload on the VXLAN
// device. With it on, some kernels send VXLAN-encapsulated packets that kube-proxy's SNAT rewrote with a
// wrong inner UDP checksum, and the receiver drops them (the "63-second delay" to Services over VXLAN;
// flannel turns it off for the same reason, flannel PR #1282).
import { commandFailed } from './errors.js';
import { run } from '../run.js';

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

/** The command line that turns it off, for people. */
export const txChecksumOff = (dev: string): string[] => ['ethtool', '-K', dev, FEATURE, 'off'];
