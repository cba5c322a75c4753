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
