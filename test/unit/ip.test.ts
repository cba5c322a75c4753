// src/net/ip.ts against ip-num (the library it replaced on the per-pod path) on random inputs: values,
// formatting, CIDR bounds, and which strings are addresses at all. The seed is printed on failure;
// PODWIRE_SEED=N replays a run.
import { IPv4, IPv4CidrRange, IPv6, IPv6CidrRange, Validator, collapseIPv6Number } from 'ip-num';
import { describe, expect, it } from 'vitest';
import { cidrContains, formatCidr, formatIP, isIPv4Mapped, parseCidr, parseIP, parseIPMaybeCidr } from '../../src/net/ip.js';

const SEED = Number(process.env.PODWIRE_SEED ?? Date.now() % 1_000_000);
const RUNS = 3000;

/** mulberry32: small, seedable, good enough to spread inputs. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(SEED);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const why = (input: string) => `input ${JSON.stringify(input)} (PODWIRE_SEED=${SEED})`;

const randV4 = (): bigint => BigInt(int(2 ** 32));
/** IPv6 values with runs of zero groups, so every compression case comes up. */
function randV6(): bigint {
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 16n) | BigInt(rand() < 0.45 ? 0 : rand() < 0.2 ? int(16) : int(65536));
  return v;
}
const groups = (v: bigint): number[] => Array.from({ length: 8 }, (_, i) => Number((v >> BigInt((7 - i) * 16)) & 0xffffn));

/** One of the many legal spellings of an IPv6 value: any zero run compressed (or none), padding, case. */
function spellV6(v: bigint): string {
  const g = groups(v).map((x) => {
    const h = x.toString(16);
    const padded = rand() < 0.3 ? h.padStart(4, '0') : h;
    return rand() < 0.3 ? padded.toUpperCase() : padded;
  });
  const runs: [number, number][] = [];
  for (let i = 0; i < 8; i++) for (let j = i; j < 8 && groups(v)[j] === 0; j++) runs.push([i, j + 1]);
  if (!runs.length || rand() < 0.2) return g.join(':');
  const [a, b] = pick(runs);
  return `${g.slice(0, a).join(':')}::${g.slice(b).join(':')}`;
}

describe(`net/ip against ip-num (PODWIRE_SEED=${SEED})`, () => {
  it('IPv4: same value and same text', () => {
    for (let i = 0; i < RUNS; i++) {
      const text = IPv4.fromNumber(randV4()).toString();
      const ours = parseIP(text);
      expect(ours, why(text)).toEqual({ family: 4, value: IPv4.fromString(text).getValue() });
      expect(formatIP(ours!), why(text)).toBe(text);
    }
  });

  it('IPv6: every spelling parses to the value ip-num reads, and formats as ip-num collapses it', () => {
    for (let i = 0; i < RUNS; i++) {
      const v = randV6();
      const text = spellV6(v);
      const theirs = IPv6.fromString(text).getValue();
      expect(parseIP(text), why(text)).toEqual({ family: 6, value: theirs });
      expect(formatIP({ family: 6, value: v }), why(text)).toBe(collapseIPv6Number(IPv6.fromBigInt(v).toString()));
    }
  });

  it('IPv6 with an IPv4 tail: the value ip-num reads', () => {
    for (let i = 0; i < RUNS / 10; i++) {
      const v4 = IPv4.fromNumber(randV4()).toString();
      const text = pick([`::ffff:${v4}`, `::${v4}`, `64:ff9b::${v4}`, `1:2:3:4:5:6:${v4}`]);
      expect(parseIP(text), why(text)).toEqual({ family: 6, value: IPv6.fromString(text).getValue() });
    }
  });

  it('CIDR: same first and last address, host bits kept, network form checked', () => {
    for (let i = 0; i < RUNS; i++) {
      const v6 = rand() < 0.5;
      const value = v6 ? randV6() : randV4();
      const prefix = int(v6 ? 129 : 33);
      const ipText = v6 ? spellV6(value) : IPv4.fromNumber(value).toString();
      const text = `${ipText}/${prefix}`;
      const range = v6 ? IPv6CidrRange.fromCidr(text) : IPv4CidrRange.fromCidr(text);
      const c = parseCidr(text);
      expect(c, why(text)).toEqual({
        family: v6 ? 6 : 4,
        ip: value,
        prefix,
        first: range.getFirst().getValue(),
        last: range.getLast().getValue(),
      });
      expect(parseCidr(text, true) !== undefined, why(text)).toBe(value === c!.first);
      expect(cidrContains(c!, { family: c!.family, value }), why(text)).toBe(true);
      expect(cidrContains(c!, { family: c!.family, value: c!.last + 1n }), why(text)).toBe(false);
      expect(parseCidr(formatCidr(c!, value)), why(text)).toEqual(c);
    }
  });

  it('random strings: an address for us exactly when ip-num says so (zones aside)', () => {
    const alphabet = '0123456789abcdefABCDEF:.';
    let valid = 0;
    for (let i = 0; i < RUNS * 5; i++) {
      const len = 1 + int(20);
      let text = '';
      for (let j = 0; j < len; j++) text += rand() < 0.3 ? pick([':', '.', '::']) : pick([...alphabet]);
      const theirs = text.includes(':') ? Validator.isValidIPv6String(text)[0] : Validator.isValidIPv4String(text)[0];
      const ours = parseIP(text);
      expect(ours !== undefined, why(text)).toBe(theirs);
      if (ours) {
        valid++;
        expect(ours.value, why(text)).toBe((ours.family === 4 ? IPv4 : IPv6).fromString(text).getValue());
      }
    }
    expect(valid).toBeGreaterThan(0); // the generator does reach valid addresses
  });
});

describe('net/ip where it differs from ip-num on purpose', () => {
  it('refuses a zone, which ip-num drops', () => {
    expect(Validator.isValidIPv6String('fe80::1%eth0')[0]).toBe(true);
    expect(parseIP('fe80::1%eth0')).toBeUndefined();
    expect(parseCidr('fe80::1%eth0/64')).toBeUndefined();
  });

  it('refuses leading zeros in a prefix and octets', () => {
    expect(Validator.isValidIPv4CidrNotation('10.0.0.0/024')[0]).toBe(true);
    expect(parseCidr('10.0.0.0/024')).toBeUndefined();
    expect(parseIP('010.0.0.1')).toBeUndefined();
  });

  it('reads an IPv4-mapped network (ip-num throws) and can tell it is one', () => {
    expect(() => IPv6CidrRange.fromCidr('::ffff:10.0.0.0/120')).toThrow();
    const c = parseCidr('::ffff:10.0.0.0/120', true)!;
    expect(formatCidr(c)).toBe('::ffff:a00:0/120');
    expect(isIPv4Mapped(c)).toBe(true);
    expect(isIPv4Mapped(parseCidr('fd00::/64')!)).toBe(false);
    expect(isIPv4Mapped(parseCidr('10.0.0.0/8')!)).toBe(false);
  });

  it('parses an address with or without a prefix', () => {
    expect(parseIPMaybeCidr('10.244.1.7/24')).toEqual(parseIP('10.244.1.7'));
    expect(parseIPMaybeCidr('10.244.1.7/33')).toBeUndefined();
    expect(parseIPMaybeCidr('fd00::7')).toEqual({ family: 6, value: (0xfd00n << 112n) | 7n });
  });
});
