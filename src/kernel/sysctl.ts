// sysctls through /proc/sys, which (for net.*) follows the network namespace of this process.
import type { Step } from './step.js';
import { sys } from '../files.js';

/** Sets a sysctl when it differs; key as a path below /proc/sys, e.g. "net/ipv4/ip_forward". True if it changed. */
export function ensureSysctl(key: string, value: string): boolean {
  const path = `/proc/sys/${key}`;
  if (sys().readText(path)?.trim() === value) return false;
  sys().writeText(path, value);
  return true;
}

export const FORWARDING_STEP: Step = {
  what: 'make sure the node forwards IPv4 packets',
  cmd: 'sysctl -w net.ipv4.ip_forward=1',
  why: 'the node routes between cni0, the VXLAN device and its own uplink; without forwarding, pods reach only their own node',
};
