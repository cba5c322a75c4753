// sysctls through /proc/sys, which (for net.*) follows the network namespace of this process.
import type { Step } from './step.js';
import { sys } from '../runtime/files.js';

/** Sets a sysctl when it differs; key as a path below /proc/sys, e.g. "net/ipv4/ip_forward". True if it changed. */
export function ensureSysctl(key: string, value: string): boolean {
  const path = `/proc/sys/${key}`;
  if (sys().readText(path)?.trim() === value) return false;
  sys().writeText(path, value);
  return true;
}

export const FORWARDING_STEP: Step = { id: 'forwarding', cmd: 'sysctl -w net.ipv4.ip_forward=1' };

/** A sysctl's value (key as a path below /proc/sys); undefined when it does not exist (a module not loaded). */
export function readSysctl(key: string): string | undefined {
  try {
    return sys().readText(`/proc/sys/${key}`)?.trim();
  } catch {
    return undefined;
  }
}

/** rp_filter as the kernel applies it to a device: the larger of "all"'s and the device's (0 off, 1 strict, 2 loose). */
export function rpFilter(dev: string): number {
  return Math.max(Number(readSysctl('net/ipv4/conf/all/rp_filter') ?? 0), Number(readSysctl(`net/ipv4/conf/${dev}/rp_filter`) ?? 0));
}

/** The sysctl(8) name of a device setting: a dot in the device name is written as a slash. */
export const devSysctl = (dev: string, key: string): string => `net.ipv4.conf.${dev.replace(/\./g, '/')}.${key}`;
