// Kubernetes as the node-list source, against a local server speaking the API's list/watch protocol with
// real Node objects: add, change and delete of nodes, a dropped watch, "410 Gone", an API server restart.
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClusterSettings, KubeSource, clusterFromNodes, nodeFacts } from '../../src/node/kube.js';
import { leftOutMessage, parseCluster } from '../../src/node/cluster.js';
import { type FakeApiServer, fakeApiServer, kubeNode, kubeconfigYaml } from '../helpers/fake-apiserver.mjs';
import { until } from '../helpers/wait.js';
import { Backoff } from '../../src/node/informer.js';

const SETTINGS: ClusterSettings = { clusterCIDRs: ['10.244.0.0/16'], backend: 'vxlan' };
const DUAL: ClusterSettings = { clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'], backend: 'vxlan' };

describe('Node objects → cluster', () => {
  it('takes the podCIDR and InternalIP of each family, and the published VTEP MACs', () => {
    const n = kubeNode('a', '192.168.50.11', '10.244.1.0/24');
    n.spec = { podCIDR: 'fd00:10::/64', podCIDRs: ['fd00:10::/64', '10.244.1.0/24'] };
    n.status!.addresses = [
      { type: 'ExternalIP', address: '203.0.113.9' },
      { type: 'InternalIP', address: 'fd00::11' },
      { type: 'InternalIP', address: '192.168.50.11' },
    ];
    n.metadata!.annotations = { 'podwire.dev/vtep-mac': '0e:70:c0:a8:32:0b', 'podwire.dev/vtep-mac-v6': '0e:76:00:00:00:11' };
    expect(nodeFacts(n)).toEqual({
      name: 'a',
      nodeIP: { 4: { value: '192.168.50.11', field: 'status.addresses[2]' }, 6: { value: 'fd00::11', field: 'status.addresses[1]' } },
      podCIDR: { 4: { value: '10.244.1.0/24', field: 'spec.podCIDRs[1]' }, 6: { value: 'fd00:10::/64', field: 'spec.podCIDRs[0]' } },
      vtepMac: {
        4: { value: '0e:70:c0:a8:32:0b', field: 'metadata.annotations["podwire.dev/vtep-mac"]' },
        6: { value: '0e:76:00:00:00:11', field: 'metadata.annotations["podwire.dev/vtep-mac-v6"]' },
      },
    });
    // Older clusters set only spec.podCIDR.
    expect(nodeFacts({ ...kubeNode('b', '192.168.50.12'), spec: { podCIDR: '10.244.2.0/24' } }).podCIDR).toEqual({
      4: { value: '10.244.2.0/24', field: 'spec.podCIDR' },
    });
  });

  it('leaves out nodes that have no podCIDR yet, and says which', () => {
    const { cluster, waiting } = clusterFromNodes(SETTINGS, [
      kubeNode('b', '192.168.50.12', '10.244.2.0/24'),
      kubeNode('a', '192.168.50.11'),
    ]);
    expect(cluster.nets[0]!.nodes.map((x) => x.name)).toEqual(['b']);
    expect(waiting).toEqual(['a']);
  });

  it('dual-stack: a node joins once it has both podCIDRs and both InternalIPs', () => {
    const both = kubeNode('a', '192.168.50.11', '10.244.1.0/24');
    both.spec = { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] };
    both.status!.addresses!.push({ type: 'InternalIP', address: 'fd00:50::11' });
    const v4only = kubeNode('b', '192.168.50.12', '10.244.2.0/24'); // its IPv6 podCIDR is still to come
    const { cluster, waiting } = clusterFromNodes(DUAL, [both, v4only]);
    expect(cluster.nets.map((n) => [n.family, n.nodes.map((x) => `${x.name}=${x.nodeIP},${x.podCIDR}`)])).toEqual([
      [4, ['a=192.168.50.11,10.244.1.0/24']],
      [6, ['a=fd00:50::11,fd00:10:244:1::/64']],
    ]);
    expect(waiting).toEqual(['b']);
  });

  it('judges each Node on its own: a bad one is left out naming the object and the field, the others are used', () => {
    const good = [kubeNode('a', '192.168.50.11', '10.244.1.0/24'), kubeNode('b', '192.168.50.12', '10.244.2.0/24')];
    const mac = kubeNode('m', '192.168.50.16', '10.244.6.0/24');
    mac.metadata!.annotations = { 'podwire.dev/vtep-mac': 'not-a-mac' };
    const stolenMac = kubeNode('s', '192.168.50.17', '10.244.7.0/24');
    stolenMac.metadata!.annotations = { 'podwire.dev/vtep-mac': '0e:70:c0:a8:32:0b' }; // a's
    const bad = [
      kubeNode('outside', '192.168.50.13', '10.99.0.0/24'),
      kubeNode('overlap', '192.168.50.14', '10.244.1.128/25'),
      kubeNode('sameip', '192.168.50.11', '10.244.5.0/24'),
      kubeNode('loop', '127.0.0.1', '10.244.8.0/24'),
      kubeNode('zero', '0.0.0.0', '10.244.9.0/24'),
      kubeNode('mcast', '239.1.1.1', '10.244.10.0/24'),
      kubeNode('ll', '169.254.3.3', '10.244.11.0/24'),
      kubeNode('garbage', '192.168.50.18', '10.244.300.0/24'),
      mac,
      stolenMac,
    ];
    const { cluster, leftOut } = clusterFromNodes(SETTINGS, [...bad, ...good], { self: 'a' });
    expect(cluster.nets[0]!.nodes.map((x) => x.name)).toEqual(['a', 'b']);
    const said = Object.fromEntries(leftOut.map((l) => [l.name, `${l.reason}: ${l.field} ${l.why}`]));
    expect(said).toEqual({
      outside: 'pod-cidr: spec.podCIDRs[0] 10.99.0.0/24 is outside the cluster network 10.244.0.0/16',
      overlap: "conflict: spec.podCIDRs[0] 10.244.1.128/25 overlaps 10.244.1.0/24 (node a's)",
      sameip: "conflict: status.addresses[0] 192.168.50.11 is node a's address",
      loop: 'node-ip: status.addresses[0] 127.0.0.1 is a loopback address: no node is reached there',
      zero: 'node-ip: status.addresses[0] 0.0.0.0 is unspecified (0.0.0.0/8): no node is reached there',
      mcast: 'node-ip: status.addresses[0] 239.1.1.1 is a multicast address: no node is reached there',
      ll: 'node-ip: status.addresses[0] 169.254.3.3 is link-local (169.254.0.0/16): no node is reached there',
      garbage: 'pod-cidr: spec.podCIDRs[0] "10.244.300.0/24" is not an IPv4 subnet in CIDR notation (host bits zero)',
      m: 'vtep-mac: metadata.annotations["podwire.dev/vtep-mac"] "not-a-mac" is not a unicast MAC address',
      s: 'conflict: metadata.annotations["podwire.dev/vtep-mac"] gives the VTEP MAC 0e:70:c0:a8:32:0b, which is node a\'s',
    });
  });

  it("values someone else wrote are quoted in messages: a newline cannot forge another line of the agent's output", () => {
    const n = kubeNode('x', '192.168.50.19', '10.244.19.0/24');
    n.metadata!.annotations = { 'podwire.dev/vtep-mac': 'oops\nleft out node good: fine' };
    const { leftOut } = clusterFromNodes(SETTINGS, [n]);
    const line = leftOutMessage(leftOut[0]!);
    expect(line).not.toContain('\n');
    expect(line).toContain('"oops\\nleft out node good: fine" is not a unicast MAC address');
  });

  it('of two Nodes claiming one slice, the established peer keeps it, else the older; never both left out', () => {
    const old = { ...kubeNode('old', '192.168.50.11', '10.244.1.0/24') };
    old.metadata!.creationTimestamp = new Date('2026-01-01T00:00:00Z');
    const young = kubeNode('young', '192.168.50.12', '10.244.1.0/24');
    young.metadata!.creationTimestamp = new Date('2026-06-01T00:00:00Z');
    const names = (r: ReturnType<typeof clusterFromNodes>) => [r.cluster.nets[0]!.nodes.map((n) => n.name), r.leftOut.map((l) => l.name)];
    expect(names(clusterFromNodes(SETTINGS, [young, old]))).toEqual([['old'], ['young']]);
    expect(names(clusterFromNodes(SETTINGS, [old, young], { established: new Set(['young']) }))).toEqual([['young'], ['old']]);
    expect(names(clusterFromNodes(SETTINGS, [old, young], { self: 'young', established: new Set(['old']) }))).toEqual([['young'], ['old']]);
  });

  it("this node's own Node unusable is an error naming it (it cannot be set up)", () => {
    expect(() => clusterFromNodes(SETTINGS, [kubeNode('a', '192.168.50.11', '10.99.0.0/24')], { self: 'a' })).toThrow(
      'node a: spec.podCIDRs[0] 10.99.0.0/24 is outside the cluster network 10.244.0.0/16',
    );
  });

  it('a cluster file is still refused whole, naming the entry, by the same rules', () => {
    const file = (nodes: unknown[]) => () => parseCluster({ clusterCIDR: '10.244.0.0/16', nodes });
    expect(file([{ name: 'a', nodeIP: '127.0.0.1', podCIDR: '10.244.1.0/24' }])).toThrow(
      'cluster file: nodes[0].nodeIP 127.0.0.1 is a loopback address',
    );
    expect(
      file([
        { name: 'a', nodeIP: '192.168.50.11', podCIDR: '10.244.1.0/24' },
        { name: 'b', nodeIP: '192.168.50.11', podCIDR: '10.244.2.0/24' },
      ]),
    ).toThrow("cluster file: nodes[1].nodeIP 192.168.50.11 is node a's address");
  });
});

describe('KubeSource (list + watch)', () => {
  let api: FakeApiServer | undefined;
  let source: KubeSource | undefined;
  afterEach(async () => {
    source?.stop();
    await api?.close();
  });

  async function start(nodes = [kubeNode('a', '192.168.50.11', '10.244.1.0/24'), kubeNode('b', '192.168.50.12', '10.244.2.0/24')]) {
    api = fakeApiServer({ nodes });
    await api.listen(0, '127.0.0.1');
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigYaml(api.url));
    const errors: Error[] = [];
    let changes = 0;
    source = new KubeSource(kc, SETTINGS, { onError: (e) => errors.push(e), backoff: new Backoff(20, 100) });
    await source.start();
    source.watch(() => changes++);
    return { errors, changes: () => changes };
  }

  const names = async () => (await source!.load()).nets[0]!.nodes.map((n) => `${n.name}=${n.nodeIP},${n.podCIDR}`);

  it('lists, then follows add, change and delete', async () => {
    const s = await start();
    expect(await names()).toEqual(['a=192.168.50.11,10.244.1.0/24', 'b=192.168.50.12,10.244.2.0/24']);
    api!.add(kubeNode('c', '192.168.50.13', '10.244.3.0/24'));
    await until(async () => (await names()).length === 3);
    api!.update(kubeNode('c', '192.168.50.99', '10.244.3.0/24'));
    await until(async () => (await names()).includes('c=192.168.50.99,10.244.3.0/24'));
    api!.remove('a');
    await until(async () => (await names()).length === 2);
    expect(await names()).toEqual(['b=192.168.50.12,10.244.2.0/24', 'c=192.168.50.99,10.244.3.0/24']);
    await until(() => s.changes() > 0);
    expect(s.errors).toEqual([]);
  });

  it('a node that gets its podCIDR later joins then', async () => {
    await start([kubeNode('a', '192.168.50.11', '10.244.1.0/24'), kubeNode('b', '192.168.50.12')]);
    expect(await names()).toEqual(['a=192.168.50.11,10.244.1.0/24']);
    api!.update(kubeNode('b', '192.168.50.12', '10.244.2.0/24'));
    await until(async () => (await names()).length === 2);
  });

  it('a watch the server ends is resumed: later changes still arrive', async () => {
    await start();
    api!.dropWatches();
    await new Promise((r) => setTimeout(r, 100));
    api!.add(kubeNode('d', '192.168.50.14', '10.244.4.0/24'));
    await until(async () => (await names()).some((n) => n.startsWith('d=')));
  });

  it('410 Gone (history compacted) makes it re-list; what changed meanwhile is seen, deletions too', async () => {
    await start();
    api!.compact(); // ends the watches; the re-watch from the old resourceVersion gets 410
    api!.remove('b');
    api!.add(kubeNode('e', '192.168.50.15', '10.244.5.0/24'));
    api!.compact(); // those events are gone from the history too: only a re-list can find them
    await until(async () => (await names()).join() === 'a=192.168.50.11,10.244.1.0/24,e=192.168.50.15,10.244.5.0/24');
  });

  it('survives an API server restart (connection refused for a while)', async () => {
    const s = await start();
    await api!.restart(300);
    api!.add(kubeNode('f', '192.168.50.16', '10.244.6.0/24'));
    await until(async () => (await names()).some((n) => n.startsWith('f=')));
    expect(s.errors.length).toBeGreaterThan(0); // it did notice, and came back on its own
  });
});
