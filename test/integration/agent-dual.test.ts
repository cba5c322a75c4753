// `podwire agent` on dual-stack Node objects (two podCIDRs, an InternalIP of each family, as kubeadm
// init --pod-network-cidr=v4,v6 and kubelet --node-ip=v4,v6 make them): it waits for both podCIDRs, sets
// up both families, publishes both VTEPs, and pods on two nodes reach each other in both. The stand-in
// API server runs inside node1's namespace. Needs root.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1Node } from '@kubernetes/client-node';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { labDown, pingAsync } from '../../src/lab/netns.js';
import { ApiServerProcess } from '../helpers/apiserver-process.js';
import { kubeNode, kubeconfigYaml } from '../helpers/fake-apiserver.mjs';
import { BIN, requireRoot, sh } from '../helpers/netns.js';
import { until } from '../helpers/wait.js';

let lab: Lab;
let api: ApiServerProcess;
let kubeconfig = '';
const agents: ChildProcess[] = [];
const PORT = 6446;

/** A dual-stack Node as the API server holds it; without podCIDRs until kube-controller-manager gives them. */
function dualNode(n: LabNode, withCIDRs = true): V1Node {
  const node = kubeNode(n.name, n.nets[0]!.nodeIP);
  node.status!.addresses!.push({ type: 'InternalIP', address: n.nets[1]!.nodeIP });
  if (withCIDRs) node.spec = { podCIDR: n.nets[0]!.podCIDR, podCIDRs: n.nets.map((x) => x.podCIDR) };
  return node;
}

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 2, 'dual');
  const [n1] = lab.nodes as [LabNode];
  api = await ApiServerProcess.start(n1.ns, PORT, '0.0.0.0');
  kubeconfig = join(n1.dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(`http://${n1.nodeIP}:${PORT}`));
}, 60_000);

afterAll(async () => {
  for (const a of agents) a.kill('SIGTERM');
  api?.kill();
  await new Promise((r) => setTimeout(r, 200));
  labDown();
});

function startAgent(n: LabNode): { stderr: () => string } {
  const args = ['--kubeconfig', kubeconfig, '--node', n.name, '--subnet-file', n.subnetFile, '--cni-conf-dir', join(n.dir, 'net.d')];
  const proc = spawn(
    'ip',
    ['netns', 'exec', n.ns, BIN, 'agent', ...args, '--cluster-cidr', '10.244.0.0/16,fd00:10:244::/48', '--status-addr', 'off'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  agents.push(proc);
  return { stderr: () => err };
}

describe('podwire agent, dual-stack', () => {
  it('waits for both podCIDRs, sets up both families, publishes both VTEPs; pods reach each other in both', async () => {
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    await api.send({ op: 'add', node: dualNode(n1) });
    const half = dualNode(n2, false);
    half.spec = { podCIDR: n2.nets[0]!.podCIDR, podCIDRs: [n2.nets[0]!.podCIDR] }; // its IPv6 podCIDR is still to come
    await api.send({ op: 'add', node: half });
    const a1 = startAgent(n1);
    const a2 = startAgent(n2);
    await until(() => api.events.some((e) => e.patch?.name === 'node1'), 15_000, `node1 to publish (${a1.stderr()})`);
    await until(() => a2.stderr().includes("waiting for node node2's IPv6 podCIDR"), 15_000, `node2 to say what it waits for`);

    await api.send({ op: 'update', node: dualNode(n2) });
    await until(() => api.events.some((e) => e.patch?.name === 'node2'), 15_000, `node2 to publish (${a2.stderr()})`);
    const patch = api.events.find((e) => e.patch?.name === 'node1').patch;
    expect(patch.body.metadata.annotations).toEqual({
      'podwire.dev/vtep-mac': '0e:70:c0:a8:32:0b',
      'podwire.dev/node-ip': '192.168.50.11',
      'podwire.dev/vtep-mac-v6': '0e:76:00:00:00:11',
      'podwire.dev/node-ip-v6': 'fd00:50::11',
      'podwire.dev/backend': 'vxlan',
    });
    expect(patch.body.status.conditions[0].message).toBe('podwire set up 10.244.1.0/24 + fd00:10:244:1::/64 on this node');
    for (const n of [n1, n2]) {
      expect(JSON.parse(readFileSync(n.subnetFile, 'utf8')).podCIDRs).toEqual(n.nets.map((x) => x.podCIDR));
      expect(JSON.parse(readFileSync(join(n.dir, 'net.d', '10-podwire.conflist'), 'utf8')).plugins[0].ipam.subnetFile).toBe(n.subnetFile);
    }
    const route6 = (n: LabNode, cidr: string) => sh('ip', ['-n', n.ns, '-6', 'route', 'show', cidr, 'proto', '112']).trim();
    await until(() => route6(n1, n2.nets[1]!.podCIDR) !== '' && route6(n2, n1.nets[1]!.podCIDR) !== '', 15_000, 'IPv6 peer routes');

    const p1 = await lab.addPod(n1, 'pod1');
    const p2 = await lab.addPod(n2, 'pod1');
    expect(p1.ips).toHaveLength(2);
    expect(await pingAsync(p1.ns, p2.ips[1]!)).toBe(true);
    expect(await pingAsync(p2.ns, p1.ips[1]!)).toBe(true);
    expect(await pingAsync(p1.ns, p2.ips[0]!)).toBe(true);
  });
});
