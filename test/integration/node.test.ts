// The node agent on a real (namespaced) multi-node lab, driven by the same code as `podwire lab`: node up
// is idempotent, peers reconcile on add/remove/change with no stale entry, routes podwire did not make are
// left alone, a restarted node gets its pods' traffic back, --watch follows the file, node down leaves
// nothing. Everything lives in pwlab-* namespaces and is removed in afterAll.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabNode, type LabPod } from '../../src/lab/lab.js';
import { labDown, pingAsync } from '../../src/lab/netns.js';
import { BIN, Sandbox, requireRoot, sh } from '../helpers/netns.js';

const box = new Sandbox();
let lab: Lab;
let pods: LabPod[];
const bare = new Map<string, string>();

const ipn = (n: LabNode, ...args: string[]) => sh('ip', ['-n', n.ns, ...args]);
const routes = (n: LabNode) => ipn(n, 'route', 'show', 'proto', '112');
const neighs = (n: LabNode) => ipn(n, 'neigh', 'show', 'nud', 'permanent');
const fdb = (n: LabNode) => {
  try {
    return sh('ip', ['netns', 'exec', n.ns, 'bridge', 'fdb', 'show', 'dev', 'podwire.1']);
  } catch {
    return '';
  }
};

/** What podwire could have changed on a node, normalised so that only real differences show. */
function snapshot(n: LabNode): string {
  const links = (JSON.parse(ipn(n, '-j', '-d', 'addr', 'show')) as any[]).map((l) => ({
    name: l.ifname,
    kind: l.linkinfo?.info_kind,
    data: l.linkinfo?.info_kind === 'vxlan' ? l.linkinfo.info_data : undefined,
    mtu: l.mtu,
    mac: l.address,
    master: l.master,
    up: l.flags.includes('UP'),
    inet: l.addr_info.filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`),
  }));
  const rules = sh('ip', ['netns', 'exec', n.ns, 'iptables-save'])
    .split('\n')
    .filter((l) => l.startsWith('-A') || (l.startsWith(':') && !/^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) /.test(l)));
  const file = existsSync(n.subnetFile) ? `${readFileSync(n.subnetFile, 'utf8')} ${statSync(n.subnetFile).mtimeMs}` : 'no subnet file';
  return JSON.stringify({ links, routes: ipn(n, 'route', 'show', 'table', 'main'), neigh: neighs(n), fdb: fdb(n), rules, file }, null, 1);
}

const reach = (from: LabPod, to: LabPod) => pingAsync(from.ns, to.ip);
const syncAll = () => Promise.all(lab.nodes.map((n) => lab.sync(n)));

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 3);
  for (const n of lab.nodes) bare.set(n.name, snapshot(n));
  await bringUp(lab);
  pods = [];
  for (const n of lab.nodes) pods.push(await lab.addPod(n, 'pod1'));
}, 60_000);

afterAll(() => {
  labDown();
  box.cleanup();
});

describe('node up / peers sync', () => {
  it('pods on different nodes reach each other by Pod IP', async () => {
    expect(await reach(pods[0]!, pods[1]!)).toBe(true);
    expect(await reach(pods[2]!, pods[0]!)).toBe(true);
  });

  it('node up a second time changes nothing, and a no-op sync starts three processes (two, and the VXLAN node set)', async () => {
    const n = lab.node('node1');
    const before = snapshot(n);
    expect(await lab.nodeUp(n)).toEqual([]);
    const s = await lab.sync(n);
    expect(s.changes).toBe(0);
    expect(s.processes).toBeLessThanOrEqual(3);
    expect(snapshot(n)).toBe(before);
  });

  it('a removed peer leaves no route, FDB entry or neighbour; added back it is reachable again', async () => {
    const n1 = lab.node('node1');
    const node3 = lab.cluster.nodes.find((x) => x.name === 'node3')!;
    lab.cluster.nodes = lab.cluster.nodes.filter((x) => x !== node3);
    lab.writeCluster();
    expect((await lab.sync(n1)).changes).toBe(3);
    expect(routes(n1)).not.toContain('10.244.3.0/24');
    expect(neighs(n1)).not.toContain('10.244.3.0');
    expect(fdb(n1)).not.toContain('192.168.50.13');
    expect(await reach(pods[0]!, pods[2]!)).toBe(false);

    lab.cluster.nodes.push(node3);
    lab.writeCluster();
    expect((await lab.sync(n1)).changes).toBe(3);
    expect(await reach(pods[0]!, pods[2]!)).toBe(true);
  });

  it('a peer whose VTEP MAC changed leaves no stale neighbour or FDB entry', async () => {
    const [n1, n2] = [lab.node('node1'), lab.node('node2')];
    lab.cluster.nodes[1]!.vtepMac = '0e:00:00:00:00:02';
    lab.writeCluster();
    expect(await lab.nodeUp(n2)).toEqual(['vxlan podwire.1 MAC -> 0e:00:00:00:00:02']);
    await syncAll();
    expect(neighs(n1)).toMatch(/10\.244\.2\.0 dev podwire\.1 lladdr 0e:00:00:00:00:02 PERMANENT/);
    expect(fdb(n1)).toContain('0e:00:00:00:00:02 dst 192.168.50.12');
    expect(fdb(n1)).not.toContain('0e:70:c0:a8:32:0c');
    expect(await reach(pods[0]!, pods[1]!)).toBe(true);

    delete lab.cluster.nodes[1]!.vtepMac;
    lab.writeCluster();
    await lab.nodeUp(n2);
    await syncAll();
    expect(fdb(n1)).not.toContain('0e:00:00:00:00:02');
  });

  it('a peer whose Node IP changed is reached at the new one, with no entry for the old', async () => {
    const [n1, n2] = [lab.node('node1'), lab.node('node2')];
    ipn(n2, 'addr', 'del', '192.168.50.12/24', 'dev', 'eth0');
    ipn(n2, 'addr', 'add', '192.168.50.22/24', 'dev', 'eth0');
    lab.cluster.nodes[1]!.nodeIP = '192.168.50.22';
    lab.writeCluster();
    expect(await lab.nodeUp(n2)).toContain('vxlan podwire.1 recreated (VNI, port or local address changed)');
    await syncAll();
    expect(fdb(n1)).toContain('0e:70:c0:a8:32:16 dst 192.168.50.22');
    expect(fdb(n1)).not.toContain('192.168.50.12');
    expect(neighs(n1)).not.toContain('0e:70:c0:a8:32:0c');
    expect(await reach(pods[0]!, pods[1]!)).toBe(true);
    expect(await reach(pods[1]!, pods[2]!)).toBe(true);
  });

  it('switching the backend to host-gw and back leaves only the entries of the backend in use', async () => {
    const n1 = lab.node('node1');
    lab.cluster.backend = 'host-gw';
    lab.writeCluster();
    await Promise.all(lab.nodes.map((n) => lab.nodeUp(n)));
    await syncAll();
    expect(ipn(n1, 'link', 'show')).not.toContain('podwire.1');
    expect(routes(n1)).toContain('10.244.2.0/24 via 192.168.50.22 dev eth0');
    expect(routes(n1)).not.toContain('onlink');
    expect(await reach(pods[0]!, pods[1]!)).toBe(true);

    lab.cluster.backend = 'vxlan';
    lab.writeCluster();
    await Promise.all(lab.nodes.map((n) => lab.nodeUp(n)));
    await syncAll();
    expect(routes(n1)).toContain('10.244.2.0/24 via 10.244.2.0 dev podwire.1 onlink');
    expect(await reach(pods[0]!, pods[1]!)).toBe(true);
  });

  it("never touches routes it did not make, even one for a peer's podCIDR", async () => {
    const n1 = lab.node('node1');
    ipn(n1, 'route', 'add', '10.250.0.0/16', 'via', '192.168.50.13', 'proto', 'static');
    ipn(n1, 'route', 'add', '10.244.9.0/24', 'via', '192.168.50.13', 'proto', 'static');
    try {
      lab.cluster.nodes.push({ name: 'node9', nodeIP: '192.168.50.99', podCIDR: '10.244.9.0/24' });
      lab.writeCluster();
      await lab.sync(n1);
      lab.cluster.nodes.pop();
      lab.writeCluster();
      await lab.sync(n1);
      const all = ipn(n1, 'route', 'show');
      expect(all).toContain('10.250.0.0/16 via 192.168.50.13 dev eth0 proto static');
      expect(all).toContain('10.244.9.0/24 via 192.168.50.13 dev eth0 proto static');
    } finally {
      ipn(n1, 'route', 'del', '10.250.0.0/16');
      ipn(n1, 'route', 'del', '10.244.9.0/24');
    }
  });

  it("a restarted node (down, up, sync) gets its pods' traffic back", async () => {
    const n2 = lab.node('node2');
    const down = await lab.podwire(n2, 'node', 'down');
    expect(down.stderr).toContain('bridge cni0 kept: pods are still attached');
    expect(await reach(pods[0]!, pods[1]!)).toBe(false);
    await lab.nodeUp(n2);
    await syncAll();
    expect(await reach(pods[0]!, pods[1]!)).toBe(true);
    expect(await reach(pods[1]!, pods[2]!)).toBe(true);
  });

  it('peers sync --watch follows changes of the cluster file', async () => {
    const n1 = lab.node('node1');
    const args = ['netns', 'exec', n1.ns, BIN, 'peers', 'sync', '--watch', '--resync', '1', '--cluster', n1.clusterFile, '--node', 'node1'];
    const watcher = spawn('ip', args, { stdio: 'ignore' });
    const until = async (f: () => boolean) => {
      for (let i = 0; i < 100 && !f(); i++) await new Promise((r) => setTimeout(r, 50));
      return f();
    };
    try {
      const node3 = lab.cluster.nodes.pop()!;
      lab.writeCluster();
      expect(await until(() => !routes(n1).includes('10.244.3.0/24'))).toBe(true);
      lab.cluster.nodes.push(node3);
      lab.writeCluster();
      expect(await until(() => routes(n1).includes('10.244.3.0/24'))).toBe(true);
      // Deleted by hand: the file does not change, the timer's re-sync repairs it.
      ipn(n1, 'route', 'del', '10.244.3.0/24');
      expect(await until(() => routes(n1).includes('10.244.3.0/24'))).toBe(true);
    } finally {
      watcher.kill('SIGTERM');
    }
  });

  it("a podCIDR on top of the node's underlay is refused by node up, naming the node and field; the node is unchanged", async () => {
    const n = lab.node('node3');
    const before = snapshot(n);
    const f = join(box.dir(), 'cluster.json');
    const good = JSON.parse(readFileSync(n.clusterFile, 'utf8'));
    const bad = { ...good, clusterCIDR: '192.168.0.0/16' };
    bad.nodes = good.nodes.map((x: { name: string; podCIDR: string }, i: number) => ({ ...x, podCIDR: `192.168.${48 + i}.0/24` }));
    writeFileSync(f, JSON.stringify(bad));
    const args = ['netns', 'exec', n.ns, BIN, 'node', 'up', '--cluster', f, '--node', n.name, '--subnet-file', join(box.dir(), 's')];
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(
      'node node3: cluster file nodes[2].podCIDR 192.168.50.0/24 overlaps 192.168.50.0/24, a network the node is on (eth0 has 192.168.50.13/24)',
    );
    expect(snapshot(n)).toBe(before);
  });

  it('node down, with no pod left, leaves each node as it was before node up', async () => {
    for (const p of [...lab.pods]) await lab.delPod(p);
    const n2 = lab.node('node2'); // its Node IP was changed above: put the original back
    ipn(n2, 'addr', 'del', '192.168.50.22/24', 'dev', 'eth0');
    ipn(n2, 'addr', 'add', '192.168.50.12/24', 'dev', 'eth0');
    for (const n of lab.nodes) {
      expect((await lab.nodeDown(n)).length).toBeGreaterThan(0);
      expect(snapshot(n)).toBe(bare.get(n.name));
    }
  });
});

describe('node up with bad input changes nothing', () => {
  const sb = new Sandbox();
  afterAll(() => sb.cleanup());

  function node(): { ns: string; up: (cluster: unknown, name?: string) => { code: number; stderr: string }; state: () => string } {
    const ns = sb.ns('node');
    sh('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
    sh('ip', ['-n', ns, 'addr', 'add', '192.168.50.11/24', 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    const dir = sb.dir();
    const up = (cluster: unknown, name = 'node1') => {
      writeFileSync(join(dir, 'cluster.json'), JSON.stringify(cluster));
      try {
        sh('ip', [
          'netns',
          'exec',
          ns,
          BIN,
          'node',
          'up',
          '--cluster',
          join(dir, 'cluster.json'),
          '--node',
          name,
          '--subnet-file',
          join(dir, 'subnet.json'),
        ]);
        return { code: 0, stderr: '' };
      } catch (e) {
        return { code: (e as { status: number }).status, stderr: String((e as { stderr: string }).stderr) };
      }
    };
    const state = () =>
      [
        sh('ip', ['-n', ns, '-br', 'link']),
        sh('ip', ['netns', 'exec', ns, 'iptables-save']).replace(/^#.*$/gm, ''),
        sh('ip', ['netns', 'exec', ns, 'sysctl', '-n', 'net.ipv4.ip_forward']),
        String(existsSync(join(dir, 'subnet.json'))),
      ].join('\n');
    return { ns, up, state };
  }
  const good = { clusterCIDR: '10.244.0.0/16', nodes: [{ name: 'node1', nodeIP: '192.168.50.11', podCIDR: '10.244.1.0/24' }] };

  it.each([
    ['a node not in the file', good, 'node9', /node "node9" is not in the cluster file/],
    [
      'a Node IP this machine does not have',
      { ...good, nodes: [{ ...good.nodes[0], nodeIP: '192.168.50.99' }] },
      'node1',
      /Node IP 192\.168\.50\.99 is not an address of this machine/,
    ],
    [
      'overlapping slices',
      { ...good, nodes: [...good.nodes, { name: 'node2', nodeIP: '192.168.50.12', podCIDR: '10.244.1.128/25' }] },
      'node1',
      /nodes\[1\]\.podCIDR 10\.244\.1\.128\/25 overlaps 10\.244\.1\.0\/24/,
    ],
    ['an MTU that does not fit the underlay with VXLAN', { ...good, mtu: 1480 }, 'node1', /mtu 1480 does not fit/],
  ])('%s', (_what, cluster, name, message) => {
    const n = node();
    const before = n.state();
    const r = n.up(cluster, name);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(n.state()).toBe(before);
  });

  it('a cni0 that is not a bridge', () => {
    const n = node();
    sh('ip', ['-n', n.ns, 'link', 'add', 'cni0', 'type', 'veth', 'peer', 'name', 'cni1']);
    const before = n.state();
    const r = n.up(good);
    expect(r.stderr).toMatch(/cni0 exists and is not a bridge/);
    expect(n.state()).toBe(before);
  });
});
