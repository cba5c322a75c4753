// status, path and diagram on a dual-stack lab (3 nodes, auto mode in both families: node1-node2 direct,
// node3 behind the router by VXLAN; dual-stack Services): every family is shown and followed, IPv6 by
// `ip route get` of an IPv6 address, ip6tables' nat table and the IPv6 VXLAN device. Everything lives in
// pwlab-* namespaces, removed in afterAll.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diagramModel } from '../../src/explore/diagram.js';
import { readWorld } from '../../src/explore/world.js';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabPod } from '../../src/lab/lab.js';
import { labDown, labScope } from '../../src/lab/netns.js';
import { type ServiceLab, addServices } from '../../src/lab/services.js';
import { BIN, requireRoot } from '../helpers/netns.js';

let lab: Lab;
let svc: ServiceLab;
const pod = (node: string, name: string): LabPod => lab.pods.find((p) => p.node.name === node && p.name === name)!;

const json = (...args: string[]): Promise<{ code: number; out: any }> =>
  new Promise((resolve) =>
    execFile(BIN, [...args, '--json'], (err, stdout) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: JSON.parse(stdout) }),
    ),
  );

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'auto', 3, 'dual');
  await bringUp(lab);
  for (const n of lab.nodes) await lab.addPod(n, 'pod1');
  svc = await addServices(lab);
}, 60_000);

afterAll(() => labDown());

describe('explore, dual-stack', () => {
  it('status shows both slices, both VXLAN devices and each peer in each family, in sync', async () => {
    const { code, out } = await json('status', '--lab', 'node1');
    expect(code).toBe(0);
    expect(out.slices.map((s: any) => [s.cidr, s.gateway])).toEqual([
      ['10.244.1.0/24', '10.244.1.1'],
      ['fd00:10:244:1::/64', 'fd00:10:244:1::1'],
    ]);
    expect(out.bridge.addresses).toEqual(['10.244.1.1/24', 'fd00:10:244:1::1/64']);
    expect(out.vxlans.map((v: any) => [v.name, v.local, v.mtu])).toEqual([
      ['podwire.1', '192.168.50.11', 1450],
      ['podwire-v6.1', 'fd00:50::11', 1430],
    ]);
    expect(out.peers.map((p: any) => [p.name, p.family, p.mode, p.drift])).toEqual([
      ['node2', 4, 'host-gw', []],
      ['node3', 4, 'vxlan', []],
      ['node2', 6, 'host-gw', []],
      ['node3', 6, 'vxlan', []],
    ]);
    // One reservation per family for each of node1's pods.
    const mine = lab.pods.filter((p) => p.node.name === 'node1');
    expect(out.pods.map((p: any) => p.ip).sort()).toEqual(mine.flatMap((p) => p.ips).sort());
    expect(out.problems).toEqual([]);
  });

  it('path follows an IPv6 packet through the IPv6 overlay, wrapped in IPv6 UDP and unwrapped by the IPv6 device', async () => {
    const [from, to] = [pod('node1', 'pod1'), pod('node3', 'pod1')];
    const { code, out } = await json('path', from.ips[1]!, to.ips[1]!, '--lab');
    expect(code).toBe(0);
    const text = out.hops.map((h: any) => `${h.where}: ${h.text}`).join('\n');
    expect(text).toContain(`via fe80::c76:ff:fe00:13 dev podwire-v6.1 - podwire's route to fd00:10:244:3::/64`);
    expect(text).toContain('the frame is wrapped in UDP fd00:50::11 -> fd00:60::13:8472');
    expect(text).toContain(`node3: podwire-v6.1 (VNI 1) unwraps it: the inner packet ${from.ips[1]} -> ${to.ips[1]}`);
    expect(out.delivered).toBe(true);
  });

  it("path turns an IPv6 Cluster IP into its backend with ip6tables' rules, and reaches a host-gw peer directly", async () => {
    const other = svc.services.find((s) => s.name === 'web-other-node')!;
    const client = svc.client;
    const { out } = await json('path', client.ips[1]!, `[${other.clusterIPs[1]}]:80`, '--lab');
    expect(out.dstKind).toMatch(/^Cluster IP/);
    expect(out.hops.map((h: any) => h.text).join('\n')).toContain(`[${other.clusterIPs[1]}]:80 -> [${other.backend.ips[1]}]:8080`);
    expect(out.delivered).toBe(true);
    expect(out.end).toBe(`[${other.backend.ips[1]}]:8080 in n3-web, Pod IP of n3-web on node3`);

    const direct = await json('path', pod('node1', 'pod1').ips[1]!, pod('node2', 'pod1').ips[1]!, '--lab');
    expect(direct.out.hops.map((h: any) => h.text).join('\n')).toContain(
      "via fd00:50::12 dev eth0 - podwire's route to fd00:10:244:2::/64",
    );
    expect(direct.out.delivered).toBe(true);
  });

  it('the diagram shows both addresses of every pod and node, and both VTEPs', async () => {
    const m = diagramModel(await readWorld(labScope()), 'dual');
    const n1 = m.nodes.find((n) => n.name === 'node1')!;
    expect(n1.nodeIPs).toEqual(['192.168.50.11/24 (eth0)', 'fd00:50::11/64 (eth0)']);
    expect(n1.vxlans.map((v) => v.name)).toEqual(['podwire.1', 'podwire-v6.1']);
    const [a4, a6] = pod('node1', 'pod1').ips;
    expect(n1.pods.find((p) => p.name === 'n1-pod1')!.ip).toBe(`${a4}/24, ${a6}/64`);
    expect(new Set(m.links.map((l) => l.podCIDR))).toEqual(
      new Set(['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24', 'fd00:10:244:1::/64', 'fd00:10:244:2::/64', 'fd00:10:244:3::/64']),
    );
  });
});
