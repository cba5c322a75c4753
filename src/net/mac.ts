// Ethernet addresses podwire chooses itself, so it never has to read one back from the kernel.
//
// Written with plain string operations: under Bun each builtin a process calls for the first time costs
// tens of microseconds (Array.from, padStart, ... are compiled on first use), and the plugin runs once per pod.

const hex2 = (b: number): string => (b < 16 ? '0' : '') + b.toString(16);

/**
 * A locally administered unicast MAC from two prefix bytes and an IPv4 address, e.g. the bridge's
 * 0a:58:<gateway> (as kubenet does) or the VTEP's 0e:70:<Node IP>: every node can compute it from the
 * address alone, and it never changes while the address stays.
 */
export function macFromIPv4(prefix: readonly [number, number], ipv4: bigint): string {
  const v = Number(ipv4);
  return `${hex2(prefix[0])}:${hex2(prefix[1])}:${hex2(v >>> 24)}:${hex2((v >>> 16) & 255)}:${hex2((v >>> 8) & 255)}:${hex2(v & 255)}`;
}

/** A MAC from 12 lower-case hex digits, made locally administered and unicast (the low two bits of the first byte). */
export function macFromHex(hex12: string): string {
  let mac = hex2((parseInt(hex12.slice(0, 2), 16) & 0xfe) | 0x02);
  for (let i = 2; i < 12; i += 2) mac += `:${hex12.slice(i, i + 2)}`;
  return mac;
}

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** A unicast Ethernet address (the low bit of the first octet is the multicast bit). */
export function validMac(s: unknown): s is string {
  return typeof s === 'string' && MAC_RE.test(s) && (parseInt(s.slice(0, 2), 16) & 1) === 0;
}

/** A MAC address's 6 bytes ("0e:70:c0:a8:3c:0d"); the caller has checked it with validMac. */
export const macBytes = (mac: string): Uint8Array => Uint8Array.from(mac.split(':').map((x) => parseInt(x, 16)));
