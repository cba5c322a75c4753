// The node agent's pure parts: the cluster file, which backend carries each peer, the diff between the
// kernel's entries and the node list, the order of the batches, and the link plan of `node up`.
import { kernelAffected, offloadDecision } from '../../src/kernel/ethtool.js';
import { t } from '../../src/i18n/index.js';
import { describe, expect, it } from 'vitest';
import { parseCidr, parseIP } from '../../src/net/ip.js';
import { type Cluster, linkLocal, parseCluster, selfNode, vtepMac } from '../../src/node/cluster.js';
import { type PeerState, desiredState, diffBatches, diffPeers, diffSize, peersOf } from '../../src/node/peers.js';
import { linkPlan, podMtu } from '../../src/node/setup.js';
import type { Link } from '../../src/kernel/state.js';

const base = {
  clusterCIDR: '10.244.0.0/16',
  backend: 'vxlan',
  nodes: [
    { name: 'node1', nodeIP: '192.168.50.11', podCIDR: '10.244.1.0/24' },
    { name: 'node2', nodeIP: '192.168.50.12', podCIDR: '10.244.2.0/24' },
    { name: 'node3', nodeIP: '192.168.60.13', podCIDR: '10.244.3.0/24' },
  ],
};
const cluster = (patch: Record<string, unknown> = {}): Cluster => parseCluster({ ...structuredClone(base), ...patch });
const underlay = { dev: 'eth0', subnets: [parseCidr('192.168.50.0/24')!] };
const dual = {
  clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'],
  backend: 'vxlan',
  nodes: [
    { name: 'node1', nodeIPs: ['192.168.50.11', 'fd00:50::11'], podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] },
    { name: 'node2', nodeIPs: ['fd00:50::12', '192.168.50.12'], podCIDRs: ['fd00:10:244:2::/64', '10.244.2.0/24'] },
  ],
};
const dualCluster = (patch: Record<string, unknown> = {}): Cluster => parseCluster({ ...structuredClone(dual), ...patch });

describe('cluster file', () => {
  it('fills defaults and derives each VTEP from the node', () => {
    const c = cluster();
    expect(c).toMatchObject({ backend: 'vxlan', vni: 1, port: 8472, bridge: 'cni0' });
    expect(c.mtu).toBeUndefined();
    expect(c.nets.map((n) => [n.family, n.clusterCIDR, n.device])).toEqual([[4, '10.244.0.0/16', 'podwire.1']]);
    expect(c.nets[0]!.nodes[1]).toEqual({
      name: 'node2',
      nodeIP: '192.168.50.12',
      podCIDR: '10.244.2.0/24',
      vtepMac: '0e:70:c0:a8:32:0c',
      vtepIP: '10.244.2.0',
      podCIDRField: 'cluster file nodes[1].podCIDR',
    });
    const c42 = cluster({ vxlan: { vni: 42, port: 4789 } });
    expect([c42.vni, c42.port, c42.nets[0]!.device]).toEqual([42, 4789, 'podwire.42']);
  });

  it('dual-stack: one net per family, IPv4 first, whatever order a node lists its addresses in', () => {
    const c = dualCluster();
    expect(c.nets.map((n) => [n.family, n.clusterCIDR, n.device])).toEqual([
      [4, '10.244.0.0/16', 'podwire.1'],
      [6, 'fd00:10:244::/56', 'podwire-v6.1'],
    ]);
    expect(c.nets[1]!.nodes[1]).toEqual({
      name: 'node2',
      nodeIP: 'fd00:50::12',
      podCIDR: 'fd00:10:244:2::/64',
      vtepMac: '0e:76:00:00:00:12',
      vtepIP: 'fe80::c76:ff:fe00:12', // the link-local address the kernel derives from that MAC (EUI-64)
      podCIDRField: 'cluster file nodes[1].podCIDRs',
    });
    expect(c.nets[0]!.nodes[1]!.podCIDR).toBe('10.244.2.0/24');
    expect(selfNode(c, 'node2').map((n) => n.nodeIP)).toEqual(['192.168.50.12', 'fd00:50::12']);
    expect(linkLocal('0e:70:c0:a8:32:0b')).toBe('fe80::c70:c0ff:fea8:320b');
    // IPv6 only
    const v6 = parseCluster({
      clusterCIDR: 'fd00:10:244::/56',
      nodes: [{ name: 'n1', nodeIP: 'fd00:50::11', podCIDR: 'fd00:10:244:1::/64' }],
    });
    expect(v6.nets.map((n) => [n.family, n.device])).toEqual([[6, 'podwire-v6.1']]);
  });

  it.each([
    [{ clusterCIDRs: ['10.244.0.0/16', '10.245.0.0/16'] }, 'clusterCIDRs', /one IPv4 and one IPv6/],
    [
      { nodes: [{ name: 'n1', nodeIP: '192.168.50.11', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] }] },
      'nodes[0].nodeIP',
      /has no IPv6 address, but the cluster is dual-stack/,
    ],
    [
      { nodes: [{ name: 'n1', nodeIPs: ['192.168.50.11', 'fd00:50::11'], podCIDR: '10.244.1.0/24' }] },
      'nodes[0].podCIDR',
      /has no IPv6 podCIDR, but the cluster is dual-stack/,
    ],
    [
      { nodes: [{ name: 'n1', nodeIPs: ['192.168.50.11', '192.168.50.12'], podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] }] },
      'nodes[0].nodeIPs',
      /has two IPv4 addresss|has two IPv4 address/,
    ],
    [
      { nodes: [{ name: 'n1', nodeIPs: ['192.168.50.11', 'fd00:50::11'], podCIDRs: ['10.244.1.0/24', 'fd00:10:245:1::/64'] }] },
      'nodes[0].podCIDRs',
      /is outside the cluster network fd00:10:244::\/56/,
    ],
    [{ vxlan: { device6: 'podwire.1' } }, 'vxlan.device6', /must differ/],
  ])('dual-stack: rejects %j, naming %s', (patch, field, why) => {
    expect(() => dualCluster(patch)).toThrow(`cluster file: ${field} `);
    expect(() => dualCluster(patch)).toThrow(why);
  });

  it('a node with an IPv6 address in an IPv4 cluster is refused too', () => {
    expect(() => cluster({ nodes: [{ name: 'n1', nodeIPs: ['192.168.50.11', 'fd00:50::11'], podCIDR: '10.244.1.0/24' }] })).toThrow(
      /nodes\[0\]\.nodeIPs has an IPv6 address, but the cluster is IPv4 only/,
    );
  });

  it('VTEP MACs are locally administered unicast, and differ for different Node IPs', () => {
    const a = vtepMac(parseIP('192.168.50.11')!);
    const b = vtepMac(parseIP('192.168.50.12')!);
    expect(a).not.toBe(b);
    const first = parseInt(a.slice(0, 2), 16);
    expect(first & 0x02).toBe(0x02);
    expect(first & 0x01).toBe(0);
  });

  it.each([
    [{ clusterCIDR: '10.244.0.1/16' }, 'clusterCIDR'],
    [{ backend: 'udp' }, 'backend'],
    [{ vxlan: { vni: 0 } }, 'vxlan.vni'],
    [{ vxlan: { port: 70000 } }, 'vxlan.port'],
    [{ vxlan: { device: 'a-very-long-device-name' } }, 'vxlan.device'],
    [{ mtu: 100 }, 'mtu'],
    [{ nodes: {} }, 'nodes'],
    [{ nodes: [{ name: 'Node_1', nodeIP: '1.2.3.4', podCIDR: '10.244.1.0/24' }] }, 'nodes[0].name'],
    [{ nodes: [{ name: 'n1', nodeIP: '1.2.3', podCIDR: '10.244.1.0/24' }] }, 'nodes[0].nodeIP'],
    [{ nodes: [{ name: 'n1', nodeIP: '1.2.3.4', podCIDR: '10.245.1.0/24' }] }, 'nodes[0].podCIDR'],
    [{ nodes: [{ name: 'n1', nodeIP: '1.2.3.4', podCIDR: '10.244.1.0/24', vtepMac: '01:00:00:00:00:01' }] }, 'nodes[0].vtepMac'],
    [{ nodes: [...base.nodes, { name: 'node1', nodeIP: '1.2.3.4', podCIDR: '10.244.9.0/24' }] }, 'nodes[3].name'],
    [{ nodes: [...base.nodes, { name: 'node4', nodeIP: '192.168.50.11', podCIDR: '10.244.9.0/24' }] }, 'nodes[3].nodeIP'],
    [{ nodes: [...base.nodes, { name: 'node4', nodeIP: '1.2.3.4', podCIDR: '10.244.0.0/23' }] }, 'nodes[3].podCIDR'],
  ])('rejects %j, naming %s', (patch, field) => {
    expect(() => cluster(patch)).toThrow(`cluster file: ${field} `);
  });

  it('names the missing node', () => {
    expect(() => selfNode(cluster(), 'node9')).toThrow(/node "node9" is not in the cluster file \(nodes: node1, node2, node3\)/);
  });

  it('pod MTU: underlay minus 50 (IPv4) or 70 (IPv6) with VXLAN, the smaller for dual-stack; a cluster MTU that does not fit is refused', () => {
    const u = (mtu: number) => [{ mtu }, { mtu }];
    expect(podMtu(cluster(), u(1500))).toBe(1450);
    expect(podMtu(cluster({ backend: 'auto' }), u(9000))).toBe(8950);
    expect(podMtu(cluster({ backend: 'host-gw' }), u(1500))).toBe(1500);
    expect(podMtu(cluster({ mtu: 1400 }), u(1500))).toBe(1400);
    expect(() => podMtu(cluster({ mtu: 1500 }), u(1500))).toThrow(/at most 1450/);
    expect(podMtu(dualCluster(), u(1500))).toBe(1430);
    expect(podMtu(dualCluster({ backend: 'host-gw' }), u(1500))).toBe(1500);
    expect(() => podMtu(dualCluster({ mtu: 1450 }), u(1500))).toThrow(/IPv6: underlay 1500 - 70; at most 1430/);
  });
});

describe('peers', () => {
  const self = (c: Cluster) => selfNode(c, 'node1')[0]!;
  const peers = (c: Cluster, sc: Cluster = c) => peersOf(c.backend, c.nets[0]!, self(sc), underlay);

  it('auto: host-gw on the connected subnet, vxlan beyond a router', () => {
    const c = cluster({ backend: 'auto' });
    expect(peers(c).map((p) => [p.node.name, p.mode])).toEqual([
      ['node2', 'host-gw'],
      ['node3', 'vxlan'],
    ]);
    expect(peers(cluster(), c).every((p) => p.mode === 'vxlan')).toBe(true);
  });

  it('desired entries per backend', () => {
    const c = cluster({ backend: 'auto' });
    expect(desiredState(peers(c), underlay, c.nets[0]!.device)).toEqual({
      routes: [
        { dst: '10.244.2.0/24', via: '192.168.50.12', dev: 'eth0', onlink: false },
        { dst: '10.244.3.0/24', via: '10.244.3.0', dev: 'podwire.1', onlink: true },
      ],
      neighs: [{ ip: '10.244.3.0', mac: '0e:70:c0:a8:3c:0d' }],
      fdb: [{ mac: '0e:70:c0:a8:3c:0d', dst: '192.168.60.13' }],
    });
  });

  const want = (c: Cluster): PeerState => desiredState(peers(c), underlay, c.nets[0]!.device);

  it("IPv6 peers: the route goes through the peer VTEP's link-local address, the FDB entry to its IPv6 Node IP; auto decides per family", () => {
    const c = dualCluster({ backend: 'auto' });
    const v6 = c.nets[1]!;
    const me = selfNode(c, 'node1')[1]!;
    const u6 = { dev: 'eth0', subnets: [parseCidr('fd00:60::/64')!] }; // node2's IPv6 Node IP is not on it
    const p = peersOf(c.backend, v6, me, u6);
    expect(p.map((x) => [x.node.name, x.mode, x.family])).toEqual([['node2', 'vxlan', 6]]);
    expect(desiredState(p, u6, v6.device)).toEqual({
      routes: [{ dst: 'fd00:10:244:2::/64', via: 'fe80::c76:ff:fe00:12', dev: 'podwire-v6.1', onlink: true }],
      neighs: [{ ip: 'fe80::c76:ff:fe00:12', mac: '0e:76:00:00:00:12' }],
      fdb: [{ mac: '0e:76:00:00:00:12', dst: 'fd00:50::12' }],
    });
    // in IPv4 the same peer is on the connected subnet: host-gw
    expect(peersOf(c.backend, c.nets[0]!, selfNode(c, 'node1')[0]!, underlay).map((x) => x.mode)).toEqual(['host-gw']);
  });
  const empty: PeerState = { routes: [], neighs: [], fdb: [] };

  it('from empty: everything is added; once applied, nothing is left to do', () => {
    const d = diffPeers(empty, want(cluster()));
    expect([d.neighSet.length, d.fdbSet.length, d.routeSet.length, d.routeDel.length, d.neighDel.length, d.fdbDel.length]).toEqual([
      2, 2, 2, 0, 0, 0,
    ]);
    expect(diffSize(diffPeers(want(cluster()), want(cluster())))).toBe(0);
  });

  it('a removed peer loses its route, FDB entry and neighbour', () => {
    const c = cluster();
    const d = diffPeers(want(c), want(cluster({ nodes: base.nodes.slice(0, 2) })));
    expect(d.routeDel.map((r) => r.dst)).toEqual(['10.244.3.0/24']);
    expect(d.fdbDel).toEqual([{ mac: '0e:70:c0:a8:3c:0d', dst: '192.168.60.13' }]);
    expect(d.neighDel.map((n) => n.ip)).toEqual(['10.244.3.0']);
    expect(diffSize(d)).toBe(3);
  });

  it('a peer with a new MAC: neighbour replaced, old FDB entry deleted, new one added, route kept', () => {
    const nodes = structuredClone(base.nodes) as Record<string, string>[];
    nodes[1]!.vtepMac = '0e:00:00:00:00:02';
    const d = diffPeers(want(cluster()), want(cluster({ nodes })));
    expect(d.neighSet).toEqual([{ ip: '10.244.2.0', mac: '0e:00:00:00:00:02' }]);
    expect(d.fdbDel).toEqual([{ mac: '0e:70:c0:a8:32:0c', dst: '192.168.50.12' }]);
    expect(d.fdbSet).toEqual([{ mac: '0e:00:00:00:00:02', dst: '192.168.50.12' }]);
    expect(d.routeSet).toEqual([]);
  });

  it('a host-gw peer with a new Node IP gets its route replaced, not a second one', () => {
    const hg = cluster({ backend: 'host-gw' });
    const nodes = structuredClone(base.nodes);
    nodes[1]!.nodeIP = '192.168.50.22';
    const d = diffPeers(want(hg), want(cluster({ backend: 'host-gw', nodes })));
    expect(d.routeSet).toEqual([{ dst: '10.244.2.0/24', via: '192.168.50.22', dev: 'eth0', onlink: false }]);
    expect(d.routeDel).toEqual([]);
  });

  it('a destination someone else routes is left alone and reported', () => {
    const d = diffPeers(empty, want(cluster()), new Set(['10.244.2.0/24']));
    expect(d.conflicts.map((r) => r.dst)).toEqual(['10.244.2.0/24']);
    expect(d.routeSet.map((r) => r.dst)).toEqual(['10.244.3.0/24']);
  });

  it('batches: neighbour before FDB before route when adding, the reverse when removing', () => {
    const added = diffBatches(diffPeers(empty, want(cluster())), 'podwire.1');
    expect(added.ip1.every((l) => l.startsWith('neigh replace'))).toBe(true);
    expect(added.bridge.every((l) => l.startsWith('fdb append'))).toBe(true);
    expect(added.ip2.every((l) => l.startsWith('route replace') && l.endsWith('onlink proto 112'))).toBe(true);
    const removed = diffBatches(diffPeers(want(cluster()), empty), 'podwire.1');
    expect(removed.ip1.every((l) => l.startsWith('route del'))).toBe(true);
    expect(removed.bridge.every((l) => l.startsWith('fdb del'))).toBe(true);
    expect(removed.ip2.every((l) => l.startsWith('neigh del'))).toBe(true);
  });
});

describe('node up plan', () => {
  const c = cluster();
  const self = selfNode(c, 'node1');
  const u = [{ dev: 'eth0', mtu: 1500 }];
  const eth0: Link = { ifname: 'eth0', mtu: 1500, addr_info: [{ family: 'inet', local: '192.168.50.11', prefixlen: 24 }] };
  const ready: Link[] = [
    eth0,
    {
      ifname: 'cni0',
      mtu: 1450,
      flags: ['UP'],
      addr_info: [{ family: 'inet', local: '10.244.1.1', prefixlen: 24 }],
      linkinfo: { info_kind: 'bridge' },
    },
    {
      ifname: 'podwire.1',
      mtu: 1450,
      address: '0e:70:c0:a8:32:0b',
      flags: ['UP'],
      addr_info: [{ family: 'inet', local: '10.244.1.0', prefixlen: 32 }],
      linkinfo: { info_kind: 'vxlan', info_data: { id: 1, local: '192.168.50.11', port: 8472, learning: false } },
    },
  ];

  it('creates bridge and VTEP on a bare node, and does nothing on a ready one', () => {
    const bare = linkPlan(c, self, [eth0], 1450, u);
    expect(bare.lines).toContain('link add name cni0 address 0a:58:0a:f4:01:01 mtu 1450 type bridge');
    expect(bare.lines).toContain(
      'link add name podwire.1 address 0e:70:c0:a8:32:0b mtu 1450 type vxlan id 1 local 192.168.50.11 dev eth0 dstport 8472 nolearning',
    );
    expect(linkPlan(c, self, ready, 1450, u)).toEqual({ lines: [], changes: [] });
  });

  it('recreates the VTEP when the VNI changed, and removes it for host-gw', () => {
    const changed = linkPlan(cluster({ vxlan: { vni: 1, port: 4789 } }), self, ready, 1450, u);
    expect(changed.lines.slice(0, 2)).toEqual(['link del dev podwire.1', expect.stringContaining('dstport 4789')]);
    expect(linkPlan(cluster({ backend: 'host-gw' }), self, ready, 1450, u).lines).toEqual(['link del dev podwire.1']);
  });

  it('refuses to take over a link of the wrong kind', () => {
    const wrong = [eth0, { ifname: 'cni0', mtu: 1500, linkinfo: { info_kind: 'veth' } }];
    expect(() => linkPlan(c, self, wrong, 1450, u)).toThrow(/cni0 exists and is not a bridge/);
  });

  it('dual-stack: a gateway per family on the bridge (IPv6 without DAD), a VTEP per family, each with its MTU', () => {
    const d = dualCluster();
    const lines = linkPlan(d, selfNode(d, 'node1'), [eth0], 1430, [
      { dev: 'eth0', mtu: 1500 },
      { dev: 'eth0', mtu: 1500 },
    ]).lines;
    expect(lines).toEqual([
      'link add name cni0 address 0a:58:0a:f4:01:01 mtu 1430 type bridge',
      'addr add 10.244.1.1/24 dev cni0',
      'addr add fd00:10:244:1::1/64 dev cni0 nodad',
      'link set dev cni0 up',
      'link add name podwire.1 address 0e:70:c0:a8:32:0b mtu 1450 type vxlan id 1 local 192.168.50.11 dev eth0 dstport 8472 nolearning',
      'addr add 10.244.1.0/32 dev podwire.1',
      'link set dev podwire.1 up',
      'link add name podwire-v6.1 address 0e:76:00:00:00:11 mtu 1430 type vxlan id 1 local fd00:50::11 dev eth0 dstport 8472 nolearning',
      'link set dev podwire-v6.1 up',
    ]);
  });
});

describe('TX checksum offload, decided per node', () => {
  it('auto: on where the kernel has the fix (5.7+), off before it and where the version cannot be read', () => {
    expect(kernelAffected('5.4.0-150-generic')).toBe(true);
    expect(kernelAffected('4.18.0-553.el8_10.x86_64')).toBe(true);
    expect(kernelAffected('3.10.0-1160.el7.x86_64')).toBe(true);
    expect(kernelAffected('5.7.0')).toBe(false);
    expect(kernelAffected('6.18.44-fc-v857')).toBe(false);
    expect(kernelAffected('10.1')).toBe(false);
    const said = (d: ReturnType<typeof offloadDecision>) => t(d.why.id, d.why.p);
    expect(offloadDecision('auto', '6.1.0-18-amd64').on).toBe(true);
    expect(said(offloadDecision('auto', '6.1.0-18-amd64'))).toContain('6.1.0-18-amd64 has the fix');
    expect(offloadDecision('auto', '5.4.0').on).toBe(false);
    expect(said(offloadDecision('auto', '5.4.0'))).toContain('before 5.7');
    expect(offloadDecision('auto', 'custom')).toMatchObject({ on: false });
    expect(offloadDecision('on', '4.19.0').on).toBe(true);
    expect(offloadDecision('off', '6.1.0').on).toBe(false);
  });

  it('is a cluster file setting, auto by default', () => {
    expect(cluster().checksumOffload).toBe('auto');
    expect(cluster({ vxlan: { checksumOffload: 'off' } }).checksumOffload).toBe('off');
    expect(() => cluster({ vxlan: { checksumOffload: 'maybe' } })).toThrow(
      'cluster file: vxlan.checksumOffload must be one of auto, on, off',
    );
  });
});
