// IP addresses and CIDR blocks for all of podwire: parsing, formatting, containment. Addresses travel as
// (family, bigint) so the allocator steps through a range with plain arithmetic.
//
// Hand-written rather than a library because the plugin starts once per pod and a library's start-up
// cost milliseconds per pod (ip-num: ~5 ms under Bun, measured). test/unit/ip.test.ts checks this module
// against ip-num (a dev dependency) on random inputs. Deliberate differences: a zone ("fe80::1%eth0") is
// refused instead of silently dropped, and IPv6 with an embedded IPv4 tail ("::ffff:10.0.0.1") parses to
// its value instead of throwing.

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

export const BITS = { 4: 32, 6: 128 } as const;

/**
 * The family a written address, CIDR or range is meant for: a colon says IPv6. Not a parse: a malformed
 * value still goes to whoever checks it, which then names the field, instead of being taken for IPv4.
 */
export const familyOf = (text: string): Family => (text.includes(':') ? 6 : 4);

/** An address and a port as URLs and tools write them: "10.96.0.12:80", "[fd00:10:96::c]:80". */
export const joinHostPort = (ip: string, port: number | string): string => (familyOf(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`);

/** A decimal octet without leading zeros (as `ip`, Go and ip-num read them). */
const OCTET = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

function parseV4(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined;
    v = v * 256 + Number(p);
  }
  return v;
}

/** The 16-bit groups of one side of "::", or undefined. An IPv4 tail counts as two groups. */
function hextets(s: string, ipv4Tail: boolean): number[] | undefined {
  if (s === '') return [];
  const parts = s.split(':');
  const out: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (HEXTET.test(p)) out.push(parseInt(p, 16));
    else if (ipv4Tail && i === parts.length - 1 && p.includes('.')) {
      const v4 = parseV4(p);
      if (v4 === undefined) return undefined;
      out.push(Math.floor(v4 / 65536), v4 % 65536);
    } else return undefined;
  }
  return out;
}

function parseV6(s: string): bigint | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = hextets(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? hextets(halves[1]!, true) : [];
  if (!head || !tail) return undefined;
  // Without "::" there must be 8 groups; "::" stands for one or more zero groups.
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return undefined;
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  return v;
}

export function parseIP(text: string): IP | undefined {
  if (typeof text !== 'string') return undefined;
  if (text.includes(':')) {
    const v = parseV6(text);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = parseV4(text);
  return v === undefined ? undefined : { family: 4, value: BigInt(v) };
}

/** RFC 5952: lower case, the longest run (2 or more) of zero groups as "::", the first on a tie. */
function formatV6(v: bigint): string {
  const g: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) g.push(((v >> shift) & 0xffffn).toString(16));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  return best < 0 ? g.join(':') : `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}

export function formatIP(ip: IP): string {
  if (ip.family === 6) return formatV6(ip.value);
  const v = Number(ip.value);
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

const PREFIX = /^(?:0|[1-9]\d{0,2})$/;

/** Parses "a.b.c.d/n" or "x::y/n"; with `network`, host bits must be zero (a subnet, not an address). */
export function parseCidr(text: string, network = false): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !PREFIX.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > BITS[ip.family]) return undefined;
  const hostMask = (1n << BigInt(BITS[ip.family] - prefix)) - 1n;
  const first = ip.value & ~hostMask;
  if (network && first !== ip.value) return undefined;
  return { family: ip.family, ip: ip.value, prefix, first, last: first | hostMask };
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
  if (!text.includes('/')) return parseIP(text);
  const c = parseCidr(text);
  return c && { family: c.family, value: c.ip };
}

/** ::ffff:0:0/96, where IPv6 sockets show IPv4 peers: an IPv4 network written as IPv6, never a pod subnet. */
export const isIPv4Mapped = (c: Cidr): boolean => c.family === 6 && c.prefix >= 96 && c.first >> 32n === 0xffffn;

/** An address as it travels: its 4 or 16 bytes in network order. */
export function ipBytes(ip: IP): Uint8Array {
  const out = new Uint8Array(ip.family === 4 ? 4 : 16);
  for (let i = out.length - 1, v = ip.value; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}
