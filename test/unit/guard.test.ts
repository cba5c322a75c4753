// The pod-subnet guard as pure logic: which node networks a pod subnet may not touch.
import { describe, expect, it } from 'vitest';
import { subnetClash } from '../../src/kernel/guard.js';
import type { Link, Route } from '../../src/kernel/state.js';
import { parseCidr } from '../../src/net/ip.js';

const addr = (cidr: string) => {
  const [local, len] = cidr.split('/');
  return { family: local!.includes(':') ? 'inet6' : 'inet', local: local!, prefixlen: Number(len) };
};
const link = (ifname: string, addrs: string[], kind?: string): Link => ({
  ifname,
  mtu: 1500,
  addr_info: addrs.map(addr),
  ...(kind ? { linkinfo: { info_kind: kind } } : {}),
});
const NODE: Link[] = [
  link('lo', ['127.0.0.1/8', '::1/128']),
  link('eth0', ['192.168.50.11/24', 'fd00:50::11/64', 'fe80::1/64']),
  link('cni0', ['10.244.1.1/24', 'fd00:10:244:1::1/64'], 'bridge'),
  link('podwire.1', ['10.244.1.0/32'], 'vxlan'),
];
const ROUTES: Route[] = [
  { dst: 'default', gateway: '192.168.50.1', dev: 'eth0' },
  { dst: 'default', gateway: '10.50.0.1', dev: 'eth0' },
];
const clash = (subnet: string, links = NODE) => subnetClash(parseCidr(subnet, true)!, links, ROUTES, ['cni0']);

describe('subnetClash', () => {
  it('a subnet apart from the node is clear, its own bridge and VTEP address included', () => {
    expect(clash('10.244.1.0/24')).toBeUndefined();
    expect(clash('fd00:10:244:1::/64')).toBeUndefined();
  });

  it('equal to, inside, or containing a network the node is on', () => {
    expect(clash('192.168.50.0/24')).toBe(
      "overlaps 192.168.50.0/24, a network the node is on (eth0 has 192.168.50.11/24), and holds the node's address 192.168.50.11",
    );
    expect(clash('192.168.50.128/25')).toContain('overlaps 192.168.50.0/24');
    expect(clash('192.168.50.128/25')).not.toContain("holds the node's address");
    expect(clash('192.168.0.0/16')).toContain("holds the node's address 192.168.50.11");
    expect(clash('fd00:50::/48')).toContain('overlaps fd00:50::/64');
    expect(clash('127.0.0.0/16')).toContain('(lo has 127.0.0.1/8)');
  });

  it("the node's default gateway, even outside its networks", () => {
    expect(clash('10.50.0.0/24')).toBe("holds the node's default gateway 10.50.0.1 (via eth0)");
  });

  it('a VTEP address is exempt only on a VXLAN device and only as the subnet network address', () => {
    expect(clash('10.244.0.0/16')).toContain('overlaps 10.244.1.0/32');
    const uplinkHost = [...NODE, link('eth1', ['10.244.1.0/32'])];
    expect(clash('10.244.1.0/24', uplinkHost)).toContain('(eth1 has 10.244.1.0/32)');
  });

  it('link-local IPv6 addresses, on every link, are no clash', () => {
    expect(clash('fe80::/64')).toBeUndefined();
  });
});

describe('the spoofing checks as text (guard/table.ts, guard/vxlan.ts)', () => {
  const b = { port: 'veth0a1b2c3d', mac: '02:42:0a:f4:01:05', ips: ['10.244.1.5', 'fd00:10:244:1::5'] };

  it("binds a pod's port last and unbinds it first; its id is its name's hex digits", async () => {
    const { bindLines, unbindLines, portId, portOfId } = await import('../../src/guard/table.js');
    const add = bindLines([b]);
    expect(add.at(-1)).toBe('add element bridge podwire-guard ports { "veth0a1b2c3d" }');
    expect(add).toContain('add element bridge podwire-guard portids { "veth0a1b2c3d" : 0xa1b2c3d }');
    expect(add).toContain('add element bridge podwire-guard ips6 { "veth0a1b2c3d" . fe80::42:aff:fef4:105 }');
    const del = unbindLines([b]);
    expect(del.find((l) => l.startsWith('delete'))).toBe('delete element bridge podwire-guard ports { "veth0a1b2c3d" }');
    expect(del).toContain('delete element bridge podwire-guard portids { "veth0a1b2c3d" }');
    expect(portOfId(portId(b.port))).toBe(b.port);
  });

  it('refuses a port, MAC or address that could carry anything else into the script', async () => {
    const { bindLines } = await import('../../src/guard/table.js');
    expect(() => bindLines([{ ...b, port: 'eth0' }])).toThrow(/not a podwire host veth/);
    expect(() => bindLines([{ ...b, port: 'veth0a1b2c3d" }; flush ruleset; #' }])).toThrow(/not a podwire host veth/);
    expect(() => bindLines([{ ...b, mac: '02:42:0a:f4:01:05 }' }])).toThrow(/not a MAC/);
    expect(() => bindLines([{ ...b, ips: ['10.244.1.5 }'] }])).toThrow(/not an IP/);
  });

  it("the VXLAN port: input from a non-node and forwarding to a node's port dropped, per family; sets replaced whole", async () => {
    const { vxlanScript, nodeLines } = await import('../../src/guard/vxlan.js');
    const s = vxlanScript(8472, ['192.168.50.11', 'fd00:50::11', '192.168.50.12']);
    expect(s.filter((l) => l.startsWith('add rule')).map((l) => l.replace(/ (limit|counter).*/, ''))).toEqual([
      'add rule inet podwire-vxlan input udp dport 8472 ip saddr != @nodes4',
      'add rule inet podwire-vxlan input udp dport 8472 ip saddr != @nodes4',
      'add rule inet podwire-vxlan forward udp dport 8472 ip daddr @nodes4',
      'add rule inet podwire-vxlan forward udp dport 8472 ip daddr @nodes4',
      'add rule inet podwire-vxlan input udp dport 8472 ip6 saddr != @nodes6',
      'add rule inet podwire-vxlan input udp dport 8472 ip6 saddr != @nodes6',
      'add rule inet podwire-vxlan forward udp dport 8472 ip6 daddr @nodes6',
      'add rule inet podwire-vxlan forward udp dport 8472 ip6 daddr @nodes6',
    ]);
    expect(nodeLines(['192.168.50.11', '192.168.50.12'])).toEqual([
      'flush set inet podwire-vxlan nodes4',
      'add element inet podwire-vxlan nodes4 { 192.168.50.11, 192.168.50.12 }',
      'flush set inet podwire-vxlan nodes6',
    ]);
    expect(() => nodeLines(['192.168.50.11 }; flush ruleset'])).toThrow(/not an IP/);
    expect(() => vxlanScript(0, [])).toThrow(/not a UDP port/);
  });
});
