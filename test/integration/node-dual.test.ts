// The node agent on a dual-stack lab: node up prepares both families (a gateway of each on the bridge, a
// VXLAN device per family with its own MTU, ip6tables chains, a subnet file with both slices); peers
// sync reconciles each family with the same spawns as one family; peers added, removed and changed per
// family leave no stale entry; node down leaves nothing of either. Everything lives in pwlab-*
// namespaces and is removed in afterAll.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabNode, type LabPod } from '../../src/lab/lab.js';
import { labDown, pingAsync } from '../../src/lab/netns.js';
import { BIN, requireRoot, sh } from '../helpers/netns.js';

let lab: Lab;
let pods: LabPod[];

const ipn = (n: LabNode, ...args: string[]) => sh('ip', ['-n', n.ns, ...args]);
const routes6 = (n: LabNode) => ipn(n, '-6', 'route', 'show', 'proto', '112');
const neighs6 = (n: LabNode) => ipn(n, '-6', 'neigh', 'show', 'nud', 'permanent');
const fdb6 = (n: LabNode) => {
  try {
    return sh('ip', ['netns', 'exec', n.ns, 'bridge', 'fdb', 'show', 'dev', 'podwire-v6.1']);
  } catch {
    return '';
  }
};
const reach6 = (from: LabPod, to: LabPod) => pingAsync(from.ns, to.ips[1]!);
const reach4 = (from: LabPod, to: LabPod) => pingAsync(from.ns, to.ips[0]!);
const syncAll = () => Promise.all(lab.nodes.map((n) => lab.sync(n)));
const entry = (name: string) => lab.cluster.nodes.find((x) => x.name === name)!;

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 3, 'dual', 'iptables'); // ip6tables chains; nftables: node.test
  await bringUp(lab);
  pods = [];
  for (const n of lab.nodes) pods.push(await lab.addPod(n, 'pod1'));
}, 60_000);

afterAll(() => labDown());

describe('dual-stack node up / peers sync', () => {
  it('node up made both families: gateways, a VTEP per family with its MTU, ip6tables chains, both slices', () => {
    const n1 = lab.node('node1');
    const links = JSON.parse(ipn(n1, '-j', '-d', 'addr', 'show')) as any[];
    const br = links.find((l) => l.ifname === 'cni0');
    expect(br.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual(
      expect.arrayContaining(['10.244.1.1/24', 'fd00:10:244:1::1/64']),
    );
    const v4 = links.find((l) => l.ifname === 'podwire.1');
    const v6 = links.find((l) => l.ifname === 'podwire-v6.1');
    expect([v4.mtu, v6.mtu, br.mtu]).toEqual([1450, 1430, 1430]); // underlay - 50, - 70, the smaller for pods
    expect(v6.linkinfo.info_data).toMatchObject({ id: 1, local6: 'fd00:50::11', port: 8472, learning: false });
    expect(v6.addr_info.map((a: any) => a.local)).toEqual(['fe80::c76:ff:fe00:11']); // its VTEP: the derived link-local
    expect(sh('ip', ['netns', 'exec', n1.ns, 'ip6tables-save'])).toMatch(/-A PODWIRE-FORWARD -s fd00:10:244::\/48 -j ACCEPT/);
    expect(JSON.parse(readFileSync(n1.subnetFile, 'utf8'))).toMatchObject({
      podCIDR: '10.244.1.0/24',
      podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
      clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/48'],
      mtu: 1430,
    });
    expect(ipn(n1, '-6', 'route', 'show', 'fd00:10:244:2::/64')).toMatch(/via fe80::c76:ff:fe00:12 dev podwire-v6\.1 proto 112/);
  });

  it('pods on different nodes reach each other in both families', async () => {
    expect(await reach4(pods[0]!, pods[1]!)).toBe(true);
    expect(await reach6(pods[0]!, pods[1]!)).toBe(true);
    expect(await reach6(pods[2]!, pods[0]!)).toBe(true);
  });

  it('node up a second time changes nothing; a no-op sync starts two processes per family, and one for the VXLAN node sets', async () => {
    const n = lab.node('node1');
    expect(await lab.nodeUp(n)).toEqual([]);
    const s = await lab.sync(n);
    expect(s.changes).toBe(0);
    expect(s.processes).toBeLessThanOrEqual(5);
  });

  it('a removed peer loses its entries in both families; added back it is reachable again in both', async () => {
    const n1 = lab.node('node1');
    const node3 = entry('node3');
    lab.cluster.nodes = lab.cluster.nodes.filter((x) => x !== node3);
    lab.writeCluster();
    expect((await lab.sync(n1)).changes).toBe(6); // route, neighbour, FDB entry: per family
    expect(routes6(n1)).not.toContain('fd00:10:244:3::/64');
    expect(neighs6(n1)).not.toContain('fe80::c76:ff:fe00:13');
    expect(fdb6(n1)).not.toContain('fd00:50::13');
    expect(await reach6(pods[0]!, pods[2]!)).toBe(false);
    expect(await reach4(pods[0]!, pods[2]!)).toBe(false);

    lab.cluster.nodes.push(node3);
    lab.writeCluster();
    expect((await lab.sync(n1)).changes).toBe(6);
    expect(await reach6(pods[0]!, pods[2]!)).toBe(true);
  });

  it('a peer whose IPv6 VTEP MAC changed: the IPv6 entries follow, the IPv4 ones stay', async () => {
    const [n1, n2] = [lab.node('node1'), lab.node('node2')];
    const before4 = ipn(n1, 'neigh', 'show', 'dev', 'podwire.1', 'nud', 'permanent');
    entry('node2').vtepMac6 = '0e:00:00:00:00:62';
    lab.writeCluster();
    expect(await lab.nodeUp(n2)).toEqual(['vxlan podwire-v6.1 MAC -> 0e:00:00:00:00:62']);
    await syncAll();
    expect(neighs6(n1)).toMatch(/fe80::c00:ff:fe00:62 dev podwire-v6\.1 lladdr 0e:00:00:00:00:62 PERMANENT/);
    expect(routes6(n1)).toContain('fd00:10:244:2::/64 via fe80::c00:ff:fe00:62 dev podwire-v6.1');
    expect(fdb6(n1)).toContain('0e:00:00:00:00:62 dst fd00:50::12');
    expect(fdb6(n1)).not.toContain('0e:76:00:00:00:12');
    expect(neighs6(n1)).not.toContain('fe80::c76:ff:fe00:12');
    expect(ipn(n1, 'neigh', 'show', 'dev', 'podwire.1', 'nud', 'permanent')).toBe(before4);
    expect(await reach6(pods[0]!, pods[1]!)).toBe(true);

    delete entry('node2').vtepMac6;
    lab.writeCluster();
    await lab.nodeUp(n2);
    await syncAll();
    expect(fdb6(n1)).not.toContain('0e:00:00:00:00:62');
    expect(await reach6(pods[0]!, pods[1]!)).toBe(true);
  });

  it('a peer whose IPv6 Node IP changed is reached at the new one, with no entry for the old', async () => {
    const [n1, n2] = [lab.node('node1'), lab.node('node2')];
    ipn(n2, 'addr', 'del', 'fd00:50::12/64', 'dev', 'eth0');
    ipn(n2, 'addr', 'add', 'fd00:50::22/64', 'dev', 'eth0', 'nodad');
    entry('node2').nodeIPs = ['192.168.50.12', 'fd00:50::22'];
    lab.writeCluster();
    expect(await lab.nodeUp(n2)).toContain('vxlan podwire-v6.1 recreated (VNI, port or local address changed)');
    await syncAll();
    expect(fdb6(n1)).toContain('0e:76:00:00:00:22 dst fd00:50::22');
    expect(fdb6(n1)).not.toContain('fd00:50::12');
    expect(await reach6(pods[0]!, pods[1]!)).toBe(true);
    expect(await reach4(pods[0]!, pods[1]!)).toBe(true);
  });

  it('node down, with no pod left, removes both families', async () => {
    for (const p of [...lab.pods]) await lab.delPod(p);
    for (const n of lab.nodes) {
      await lab.nodeDown(n);
      expect(ipn(n, 'link', 'show')).not.toMatch(/podwire|cni0/);
      expect(routes6(n)).toBe('');
      expect(sh('ip', ['netns', 'exec', n.ns, 'ip6tables-save'])).not.toContain('PODWIRE');
      expect(sh('ip', ['netns', 'exec', n.ns, 'iptables-save'])).not.toContain('PODWIRE');
    }
  });
});
