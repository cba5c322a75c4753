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

/**
 * A pod's interface inside its namespace, set before it is brought up: no router advertisement is taken
 * (its routes come from its node). Not arp_notify or ndisc_notify: a veth sends what they announce at link
 * up before its queue is running, and the announcement is lost (seen with tcpdump on the bridge); ADD asks
 * for the IPv4 gateway instead (kernel/links.ts podLines), and DEL makes the node forget the addresses.
 */
const podSysctlKeys = (ifname: string): [string, string][] => [[`net/ipv6/conf/${ifname}/accept_ra`, '0']];

/**
 * Sets them from inside the pod's namespace: this thread goes there and back (setns, no process) for a
 * few file writes. The keys it set ("net.ipv4.conf.eth0.arp_notify=1"; a family the pod has off is left
 * out), or undefined where this runtime cannot enter a namespace (under Node).
 */
export function podSysctls(netns: string, ifname: string): string[] | undefined {
  const set: string[] = [];
  const entered = sys().inNetns(netns, () => {
    for (const [key, value] of podSysctlKeys(ifname)) {
      const path = `/proc/sys/${key}`;
      if (!sys().exists(path)) continue;
      sys().writeText(path, value);
      set.push(`${key.replace(/\//g, '.')}=${value}`);
    }
  });
  return entered ? set : undefined;
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
