// sysctls through /proc/sys, which (for net.*) follows the network namespace of this process.
import { readFileSync, writeFileSync } from 'node:fs';

/** Sets a sysctl when it differs; key as a path below /proc/sys, e.g. "net/ipv4/ip_forward". True if it changed. */
export function ensureSysctl(key: string, value: string): boolean {
  const path = `/proc/sys/${key}`;
  if (readFileSync(path, 'utf8').trim() === value) return false;
  writeFileSync(path, value);
  return true;
}
