import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseNetConf } from '../../src/cni/skel.js';
import { type Pool, parseIpamConfig } from '../../src/ipam/config.js';
import { formatCidr, formatIP } from '../../src/net/ip.js';
import { parseBridgeConf } from '../../src/plugin/config.js';

const dir = mkdtempSync(join(tmpdir(), 'podwire-conf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fails(f: () => unknown): { code: number; message: string } {
  try {
    f();
  } catch (e) {
    return e as { code: number; message: string };
  }
  throw new Error('did not throw');
}

describe('ipam config', () => {
  it('defaults: gateway is the first address, range is the rest', () => {
    const c = parseIpamConfig({ subnet: '10.244.1.0/24' });
    const [pool] = c.pools as [Pool];
    expect(c.pools).toHaveLength(1);
    expect(formatIP(pool.gateway)).toBe('10.244.1.1');
    expect(formatIP({ family: 4, value: pool.start })).toBe('10.244.1.1');
    expect(formatIP({ family: 4, value: pool.end })).toBe('10.244.1.254');
    expect(c.dataDir).toBe('/var/lib/cni/networks');
  });

  it.each([
    [{ subnet: '10.244.1.5/24' }, 'ipam.subnet'],
    [{ subnet: 'nope' }, 'ipam.subnet'],
    [{ subnet: '10.244.1.0/31' }, 'ipam.subnet'],
    [{}, 'ipam.subnet'],
    [{ subnet: '10.244.1.0/24', gateway: '10.9.9.9' }, 'ipam.gateway'],
    [{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.0' }, 'ipam.rangeStart'],
    [{ subnet: '10.244.1.0/24', rangeEnd: '10.244.1.255' }, 'ipam.rangeEnd'],
    [{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.9', rangeEnd: '10.244.1.8' }, 'ipam.rangeStart'],
    [{ subnet: '10.244.1.0/24', routes: [{ dst: '10.96.0.0/12', gw: 'x' }] }, 'ipam.routes[0].gw'],
    [{ subnet: '10.244.1.0/24', routes: [{ dst: '10.96.0.1/12' }] }, 'ipam.routes[0].dst'],
    [{ subnet: '10.244.1.0/24', dataDir: 'relative' }, 'ipam.dataDir'],
    [{ subnet: '10.244.1.0/24', subnetFile: '/x' }, 'ipam.subnet'],
    // an IPv4 network written as IPv6 (ip-num used to throw its own error here: code 999)
    [{ subnet: '::ffff:10.0.0.0/120' }, 'ipam.subnet'],
    [{ subnet: 'fe80::%eth0/64' }, 'ipam.subnet'],
    [{ ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: '10.245.1.0/24' }]] }, 'ipam.ranges'],
    [{ ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00::/64', gateway: 'fd01::1' }]] }, 'ipam.ranges[1][0].gateway'],
    [{ ranges: [{ subnet: '10.244.1.0/24' }] }, 'ipam.ranges[0]'],
    [{ ranges: [] }, 'ipam.ranges'],
  ])('%j is code 7 naming %s', (ipam, key) => {
    const e = fails(() => parseIpamConfig(ipam));
    expect(e.code).toBe(7);
    expect(e.message).toContain(key);
  });

  it('reads the node subnet file, and a missing one is "try again later" (11)', () => {
    const f = join(dir, 'subnet.json');
    writeFileSync(f, JSON.stringify({ podCIDR: '10.244.7.0/24', clusterCIDR: '10.244.0.0/16', mtu: 1450 }));
    const c = parseIpamConfig({ subnetFile: f });
    expect(formatIP(c.pools[0]!.gateway)).toBe('10.244.7.1');
    expect(c.mtu).toBe(1450);
    expect(fails(() => parseIpamConfig({ subnetFile: join(dir, 'absent.json') })).code).toBe(11);
    writeFileSync(f, '{"podCIDR": 5}');
    expect(fails(() => parseIpamConfig({ subnetFile: f }))).toMatchObject({ code: 7, message: expect.stringContaining('ipam.subnetFile') });
  });

  it('dual-stack: a slice per family, from the subnet file or host-local style ranges, in the order given', () => {
    const f = join(dir, 'dual.json');
    writeFileSync(f, JSON.stringify({ podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24', 'fd00:10:244:7::/64'], mtu: 1430 }));
    const fromFile = parseIpamConfig({ subnetFile: f });
    expect(fromFile.pools.map((p) => [formatCidr(p.subnet), formatIP(p.gateway)])).toEqual([
      ['10.244.7.0/24', '10.244.7.1'],
      ['fd00:10:244:7::/64', 'fd00:10:244:7::1'],
    ]);
    const ranges = parseIpamConfig({
      ranges: [[{ subnet: 'fd00:10:244:7::/64', rangeStart: 'fd00:10:244:7::10' }], [{ subnet: '10.244.7.0/24' }]],
    });
    expect(ranges.pools.map((p) => formatCidr(p.subnet))).toEqual(['fd00:10:244:7::/64', '10.244.7.0/24']);
    expect(formatIP({ family: 6, value: ranges.pools[0]!.start })).toBe('fd00:10:244:7::10');
    writeFileSync(f, JSON.stringify({ podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24', '10.244.8.0/24'] }));
    expect(fails(() => parseIpamConfig({ subnetFile: f }))).toMatchObject({
      code: 7,
      message: expect.stringContaining('one IPv4 and one IPv6'),
    });
  });
});

describe('network config', () => {
  const good = { cniVersion: '1.0.0', name: 'podnet', type: 'podwire', ipam: { subnet: '10.244.1.0/24' } };

  it('accepts a valid config with defaults', () => {
    expect(parseBridgeConf(parseNetConf(JSON.stringify(good)))).toEqual({
      bridge: 'cni0',
      mtu: undefined,
      hairpinMode: true,
      isDefaultGateway: true,
      ipMasq: false,
      spoofChecks: true,
    });
  });

  it('decode errors are 6, unsupported versions 1, bad keys 7 naming the key', () => {
    expect(fails(() => parseNetConf('{"cniVersion": '))).toMatchObject({ code: 6 });
    expect(fails(() => parseNetConf('[]'))).toMatchObject({ code: 6 });
    expect(fails(() => parseNetConf(JSON.stringify({ ...good, cniVersion: '0.2.0' })))).toMatchObject({ code: 1 });
    expect(fails(() => parseNetConf(JSON.stringify({ ...good, cniVersion: undefined })))).toMatchObject({
      code: 7,
      message: expect.stringContaining('cniVersion'),
    });
    expect(fails(() => parseNetConf(JSON.stringify({ ...good, name: '../etc' })))).toMatchObject({
      code: 7,
      message: expect.stringContaining('name'),
    });
    expect(fails(() => parseNetConf(JSON.stringify({ ...good, logLevel: 'loud' })))).toMatchObject({
      code: 7,
      message: expect.stringContaining('logLevel'),
    });
    for (const [k, v] of [
      ['bridge', 'a/b'],
      ['mtu', 70000],
      ['mtu', '1500'],
      ['hairpinMode', 'yes'],
      ['ipMasq', 1],
    ] as const) {
      expect(fails(() => parseBridgeConf(parseNetConf(JSON.stringify({ ...good, [k]: v }))))).toMatchObject({
        code: 7,
        message: expect.stringContaining(k),
      });
    }
  });
});
