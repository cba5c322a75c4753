// IP and CIDR values for the rest of podwire. Parsing, formatting and range math go through ip-num;
// addresses travel as (family, bigint) so the allocator can step through a range with plain arithmetic.
import { IPv4, IPv6, IPv4CidrRange, IPv6CidrRange, Validator, collapseIPv6Number } from 'ip-num';

export type Family = 4 | 6;

export interface IP {
  family: Family;
  value: bigint;
}

export interface Cidr {
  family: Family;
  /** The address as written (host bits may be set, as in "10.244.1.5/24"). */
  ip: bigint;
  prefix: number;
  /** Network address and last address of the block. */
  first: bigint;
  last: bigint;
}

export function parseIP(text: string): IP | undefined {
  if (typeof text !== 'string') return undefined;
  if (Validator.isValidIPv4String(text)[0]) return { family: 4, value: IPv4.fromString(text).getValue() };
  if (text.includes(':') && Validator.isValidIPv6String(text)[0]) {
    return { family: 6, value: IPv6.fromString(text).getValue() };
  }
  return undefined;
}

export function formatIP(ip: IP): string {
  return ip.family === 4 ? IPv4.fromNumber(ip.value).toString() : collapseIPv6Number(IPv6.fromBigInt(ip.value).toString());
}

/** Parses "a.b.c.d/n" or "x::y/n"; with `network`, host bits must be zero (a subnet, not an address). */
export function parseCidr(text: string, network = false): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (ip.family === 4 ? 32 : 128)) return undefined;
  const range = ip.family === 4 ? IPv4CidrRange.fromCidr(text) : IPv6CidrRange.fromCidr(text);
  const first = range.getFirst().getValue();
  if (network && first !== ip.value) return undefined;
  return { family: ip.family, ip: ip.value, prefix, first, last: range.getLast().getValue() };
}

export function formatCidr(c: Cidr, address: bigint = c.first): string {
  return `${formatIP({ family: c.family, value: address })}/${c.prefix}`;
}

export function cidrContains(c: Cidr, ip: IP): boolean {
  return c.family === ip.family && ip.value >= c.first && ip.value <= c.last;
}

/** Accepts "10.244.1.7" or "10.244.1.7/24" (runtimeConfig.ips uses the latter). */
export function parseIPMaybeCidr(text: string): IP | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return parseIP(text);
  const c = parseCidr(text);
  return c && { family: c.family, value: c.ip };
}
