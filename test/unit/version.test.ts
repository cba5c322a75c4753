import { describe, expect, it } from 'vitest';
import type { Result } from '../../src/cni/types.js';
import { SUPPORTED_VERSIONS, compareVersions, convertResult, parseResult, requireVersionFor } from '../../src/cni/version.js';

const full: Result = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'cni0', mac: '0a:58:0a:f4:01:01', mtu: 1450 },
    { name: 'eth0', mac: '02:00:00:00:00:01', mtu: 1450, sandbox: '/run/netns/p' },
  ],
  ips: [
    { address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 1 },
    { address: 'fd00::5/64', gateway: 'fd00::1', interface: 1 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1', mtu: 1400, priority: 5 }],
  dns: { nameservers: ['10.96.0.10'] },
};

describe('convertResult', () => {
  it.each(SUPPORTED_VERSIONS)('renders %s with the fields that version has', (v) => {
    const out = convertResult(full, v) as Record<string, any>;
    expect(out.cniVersion).toBe(v);
    const pre1 = v.startsWith('0.');
    expect(out.ips.map((i: any) => i.version)).toEqual(pre1 ? ['4', '6'] : [undefined, undefined]);
    expect(out.ips[0].address).toBe('10.244.1.5/24');
    expect(out.ips[0].interface).toBe(1);
    const is11 = v === '1.1.0';
    expect(out.interfaces[0].mtu).toBe(is11 ? 1450 : undefined);
    expect(out.routes[0].mtu).toBe(is11 ? 1400 : undefined);
    expect(out.routes[0].priority).toBe(is11 ? 5 : undefined);
    expect(out.routes[0].gw).toBe('10.244.1.1');
    expect(out.interfaces[1].sandbox).toBe('/run/netns/p');
    expect(out.dns).toEqual({ nameservers: ['10.96.0.10'] });
    // round trip: an older result read back as prevResult loses only the version markers
    expect(parseResult(JSON.parse(JSON.stringify(out)))!.ips![1]).toEqual(full.ips![1]);
  });

  it('leaves the input untouched and omits empty dns', () => {
    const copy = structuredClone(full);
    const out = convertResult({ ...full, dns: {} }, '0.3.1');
    expect(full).toEqual(copy);
    expect(out).not.toHaveProperty('dns');
  });
});

describe('versions', () => {
  it('compares numerically', () => {
    expect(compareVersions('0.10.0', '0.4.0')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect(compareVersions('0.3.1', '0.4.0')).toBeLessThan(0);
  });

  it('refuses CHECK before 0.4.0 and GC/STATUS before 1.1.0 with code 1', () => {
    for (const [cmd, ok, bad] of [
      ['CHECK', '0.4.0', '0.3.1'],
      ['GC', '1.1.0', '1.0.0'],
      ['STATUS', '1.1.0', '0.4.0'],
    ]) {
      expect(() => requireVersionFor(cmd!, ok!)).not.toThrow();
      expect(() => requireVersionFor(cmd!, bad!)).toThrow(expect.objectContaining({ code: 1 }));
    }
    expect(() => requireVersionFor('ADD', '0.3.0')).not.toThrow();
  });

  it('parseResult ignores what is not a result', () => {
    expect(parseResult(undefined)).toBeUndefined();
    expect(parseResult('x')).toBeUndefined();
    expect(parseResult({ ips: [{ nope: 1 }, { address: '10.0.0.2/24', version: '4' }] })!.ips).toEqual([{ address: '10.0.0.2/24' }]);
  });
});
