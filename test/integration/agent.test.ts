// `podwire agent` (the real binary) on a two-node lab, following a stand-in API server that speaks the
// Kubernetes list/watch protocol with real Node objects. The server runs inside node1's namespace and both
// agents reach it over the lab's underlay, so nothing leaves the lab's namespaces. Covered: waiting for
// a podCIDR, node setup + conflist + subnet file, the nodes/status patch (annotations, NetworkUnavailable
// False), pods on two nodes reaching each other, a node added / changed / deleted, a dropped watch, 410
// Gone, and a clear failure when the podCIDR never comes.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAll } from 'js-yaml';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { labDown, pingAsync } from '../../src/lab/netns.js';
import { run } from '../../src/runtime/run.js';
import { kubeNode, kubeconfigYaml } from '../helpers/fake-apiserver.mjs';
import { ApiServerProcess } from '../helpers/apiserver-process.js';
import { BIN, ROOT, requireRoot, sh } from '../helpers/netns.js';
import { until } from '../helpers/wait.js';
import { type AgentHandle, spawnAgent } from '../helpers/agent.js';

let lab: Lab;
let api: ApiServerProcess | undefined;
const agents: ChildProcess[] = [];
let events: any[] = [];
const PORT = 6443;
let kubeconfig = '';

const send = (op: { op: string; [k: string]: unknown }) => api!.send(op);
/** The agents of node1 and node2, started by the first test. */
let main: ReturnType<typeof startAgent>[] = [];

const ipn = (n: LabNode, ...args: string[]) => sh('ip', ['-n', n.ns, ...args]);

/** GET of the agent's status server inside a node's namespace: the HTTP code and the body. */
async function status(n: LabNode, path: string, port = 9471): Promise<{ code: number; body: string }> {
  const r = await run('ip', ['netns', 'exec', n.ns, 'curl', '-s', '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`]);
  const i = r.stdout.lastIndexOf('\n');
  return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i).trim() };
}
/** One sample's value from Prometheus text, e.g. metric(text, 'podwire_peers{backend="vxlan"}'). */
const metric = (text: string, sample: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(sample + ' '));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
};
const fdb = (n: LabNode) => sh('ip', ['netns', 'exec', n.ns, 'bridge', 'fdb', 'show', 'dev', 'podwire.1']);
const peerRoute = (n: LabNode, cidr: string) => ipn(n, 'route', 'show', cidr, 'proto', '112').trim();

function startAgent(n: LabNode, extra: string[] = [], config = kubeconfig): AgentHandle {
  const a = spawnAgent(n, config, ['--resync', '2', ...extra]);
  agents.push(a.proc);
  return a;
}

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 2);
  const [n1] = lab.nodes;
  api = await ApiServerProcess.start(n1!.ns, PORT, '0.0.0.0');
  events = api.events;
  kubeconfig = join(n1!.dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(`http://${n1!.nodeIP}:${PORT}`));
}, 60_000);

afterAll(async () => {
  for (const a of agents) a.kill('SIGTERM');
  api?.kill();
  await new Promise((r) => setTimeout(r, 200));
  labDown();
});

describe('podwire agent (Kubernetes)', () => {
  it('waits for its podCIDR, sets the node up, writes the CNI config, reports NetworkUnavailable=False', async () => {
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    await send({ op: 'add', node: kubeNode('node1', n1.nodeIP, n1.podCIDR) });
    await send({ op: 'add', node: kubeNode('node2', n2.nodeIP) }); // registered, no podCIDR yet
    const a1 = startAgent(n1);
    const a2 = startAgent(n2);
    main = [a1, a2];
    await until(() => events.some((e) => e.patch?.name === 'node1'), 15_000, 'node1 to publish');
    await new Promise((r) => setTimeout(r, 500));
    expect(events.some((e) => e.patch?.name === 'node2')).toBe(false);
    expect(a2.stderr()).not.toContain('NetworkUnavailable=False');
    // It says what it waits for, to its log and to kubelet's probes: alive, not ready.
    expect(a2.stderr()).toContain("waiting for node node2's podCIDR");
    expect(await status(n2, '/healthz')).toEqual({ code: 200, body: 'ok' });
    expect(await status(n2, '/readyz')).toMatchObject({ code: 503, body: expect.stringContaining("waiting for node node2's podCIDR") });

    // kube-controller-manager gives node2 its slice: its agent goes on.
    await send({ op: 'update', node: kubeNode('node2', n2.nodeIP, n2.podCIDR) });
    await until(() => events.some((e) => e.patch?.name === 'node2'), 15_000, 'node2 to publish');

    const patch = events.find((e) => e.patch?.name === 'node1').patch;
    expect(patch.contentType).toBe('application/strategic-merge-patch+json');
    expect(patch.body.metadata.annotations).toEqual({
      'podwire.dev/vtep-mac': '0e:70:c0:a8:32:0b',
      'podwire.dev/node-ip': n1.nodeIP,
      'podwire.dev/backend': 'vxlan',
    });
    expect(patch.body.status.conditions).toEqual([
      expect.objectContaining({ type: 'NetworkUnavailable', status: 'False', reason: 'PodwireIsUp' }),
    ]);

    for (const n of [n1, n2]) {
      expect(JSON.parse(readFileSync(n.subnetFile, 'utf8')).podCIDR).toBe(n.podCIDR);
      const conf = JSON.parse(readFileSync(join(n.dir, 'net.d', '10-podwire.conflist'), 'utf8'));
      expect(conf.plugins[0]).toMatchObject({ type: 'podwire', ipam: { subnetFile: n.subnetFile } });
      expect(existsSync(join(n.dir, 'net.d', `10-podwire.conflist.tmp-${a1.proc.pid}`))).toBe(false);
    }
    await until(() => peerRoute(n1, n2.podCIDR) !== '' && peerRoute(n2, n1.podCIDR) !== '', 15_000, 'peer routes');

    // Ready once set up and synced; the metrics say so, with the peers and the syncs.
    for (const n of [n1, n2]) {
      await until(async () => (await status(n, '/readyz')).code === 200, 10_000, `${n.name} ready`);
      const m = (await status(n, '/metrics')).body;
      expect(metric(m, 'podwire_node_ready')).toBe(1);
      expect(metric(m, 'podwire_peers{backend="vxlan"}')).toBe(1);
      expect(metric(m, 'podwire_syncs_total{outcome="ok"}')).toBeGreaterThan(0);
      expect(metric(m, 'podwire_sync_duration_seconds_count{outcome="ok"}')).toBeGreaterThan(0);
      expect(metric(m, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    }

    // Pods on the two nodes reach each other.
    const p1 = await lab.addPod(n1, 'pod1');
    const p2 = await lab.addPod(n2, 'pod1');
    expect(await pingAsync(p1.ns, p2.ip)).toBe(true);
    expect(await pingAsync(p2.ns, p1.ip)).toBe(true);
  });

  it('a node added, changed and deleted in the API shows up, moves and goes on every node', async () => {
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    await send({ op: 'add', node: kubeNode('node3', '192.168.50.13', '10.244.3.0/24') });
    for (const n of [n1, n2]) await until(() => fdb(n).includes('0e:70:c0:a8:32:0d dst 192.168.50.13'), 15_000, `node3 on ${n.name}`);
    expect(peerRoute(n1, '10.244.3.0/24')).toContain('via 10.244.3.0 dev podwire.1 onlink');
    expect(ipn(n1, 'neigh', 'show', '10.244.3.0', 'dev', 'podwire.1')).toContain('0e:70:c0:a8:32:0d');

    // Its Node IP changes (a new VM, same name): the VTEP MAC and FDB destination follow.
    await send({ op: 'update', node: kubeNode('node3', '192.168.50.23', '10.244.3.0/24') });
    await until(() => fdb(n1).includes('0e:70:c0:a8:32:17 dst 192.168.50.23') && !fdb(n1).includes('192.168.50.13'), 15_000, 'node3 moved');

    await send({ op: 'remove', name: 'node3' });
    for (const n of [n1, n2])
      await until(() => peerRoute(n, '10.244.3.0/24') === '' && !fdb(n).includes('192.168.50.23'), 15_000, `node3 gone on ${n.name}`);
    expect(ipn(n1, 'neigh', 'show', '10.244.3.0', 'dev', 'podwire.1').trim()).toBe('');
  });

  it('hostile and broken Nodes are left out one by one, said where an operator looks; the others go on; a fixed one comes in', async () => {
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    const kernel = (n: LabNode) =>
      [ipn(n, 'route', 'show', 'proto', '112'), fdb(n), ipn(n, 'neigh', 'show', 'dev', 'podwire.1')].join('\n');
    const before = [n1, n2].map(kernel);
    const withMac = (name: string, ip: string, cidr: string, mac: string) => {
      const node = kubeNode(name, ip, cidr);
      node.metadata!.annotations = { 'podwire.dev/vtep-mac': mac };
      return node;
    };
    const evil = [
      kubeNode('evil-1', '192.168.50.31', '10.99.0.0/24'),
      kubeNode('evil-2', '192.168.50.32', n1.podCIDR),
      kubeNode('evil-3', n2.nodeIP, '10.244.33.0/24'),
      kubeNode('evil-4', '127.0.0.1', '10.244.34.0/24'),
      withMac('evil-5', '192.168.50.35', '10.244.35.0/24', 'zz:zz'),
      withMac('evil-6', '192.168.50.36', '10.244.36.0/24', '0e:70:c0:a8:32:0b'), // node1's own VTEP MAC
    ];
    for (const e of evil) await send({ op: 'add', node: e });
    const said = {
      'evil-1': 'left out node evil-1: spec.podCIDRs[0] 10.99.0.0/24 is outside the cluster network 10.244.0.0/16',
      'evil-2': `left out node evil-2: spec.podCIDRs[0] ${n1.podCIDR} overlaps ${n1.podCIDR} (node node1's)`,
      'evil-3': `left out node evil-3: status.addresses[0] ${n2.nodeIP} is node node2's address`,
      'evil-4': 'left out node evil-4: status.addresses[0] 127.0.0.1 is a loopback address',
      'evil-5': 'left out node evil-5: metadata.annotations["podwire.dev/vtep-mac"] "zz:zz" is not a unicast MAC address',
      'evil-6':
        'left out node evil-6: metadata.annotations["podwire.dev/vtep-mac"] gives the VTEP MAC 0e:70:c0:a8:32:0b, which is node node1\'s',
    };
    for (const a of main) await until(() => Object.values(said).every((m) => a.stderr().includes(m)), 15_000, 'every bad Node to be told');
    // A good node added after them is reached everywhere, within seconds.
    await send({ op: 'add', node: kubeNode('good-7', '192.168.50.37', '10.244.37.0/24') });
    for (const n of [n1, n2]) await until(() => fdb(n).includes('0e:70:c0:a8:32:25 dst 192.168.50.37'), 10_000, `good-7 on ${n.name}`);
    // Nothing of the bad ones reached the kernel; what was there before is still there.
    for (const [i, n] of [n1, n2].entries()) {
      const now = kernel(n);
      for (const bad of [
        '10.99.0.0',
        '10.244.33.',
        '10.244.34.',
        '10.244.35.',
        '10.244.36.',
        '192.168.50.31',
        '192.168.50.32',
        '127.0.0.1',
      ])
        expect(now, `${n.name}: ${bad}`).not.toContain(bad);
      for (const line of before[i]!.split('\n').filter(Boolean)) expect(now).toContain(line);
    }
    expect(fdb(n1)).not.toMatch(/0e:70:c0:a8:32:0b dst/); // node1's own MAC never points anywhere from node1
    expect(peerRoute(n2, n1.podCIDR)).toContain(`via ${n1.podCIDR.replace('/24', '')} dev podwire.1`);
    // This node is fine: still ready; the metrics, an Event on each Node, status and doctor say which and why.
    for (const n of [n1, n2]) {
      expect(await status(n, '/readyz')).toEqual({ code: 200, body: 'ok' });
      const m = (await status(n, '/metrics')).body;
      expect(['pod-cidr', 'node-ip', 'vtep-mac', 'conflict'].map((r) => metric(m, `podwire_nodes_left_out{reason="${r}"}`))).toEqual([
        1, 1, 1, 3,
      ]);
    }
    const posted = events.filter((e) => e.event?.reason === 'PodwireNodeLeftOut').map((e) => e.event.involvedObject.name);
    for (const name of Object.keys(said)) expect(posted).toContain(name);
    const conflist = join(n1.dir, 'net.d', '10-podwire.conflist');
    const st = await run('ip', ['netns', 'exec', n1.ns, BIN, 'status', '--conflist', conflist, '--json']);
    expect(
      JSON.parse(st.stdout)
        .leftOut.map((l: { name: string }) => l.name)
        .sort(),
    ).toEqual(Object.keys(said));
    const doc = await run('ip', ['netns', 'exec', n1.ns, BIN, 'doctor', '--conflist', conflist, '--json', '--no-probe']);
    expect(JSON.parse(doc.stdout).findings.find((f: { check: string }) => f.check === 'nodes-left-out')).toMatchObject({
      ok: false,
      what: expect.stringContaining('node evil-1: spec.podCIDRs[0] 10.99.0.0/24 is outside the cluster network'),
    });

    // Fixed, a Node comes in; deleted, the others go; the cluster is back as it was.
    await send({ op: 'update', node: kubeNode('evil-1', '192.168.50.31', '10.244.31.0/24') });
    for (const n of [n1, n2]) await until(() => fdb(n).includes('dst 192.168.50.31'), 10_000, `evil-1 fixed, on ${n.name}`);
    for (const a of main) await until(() => a.stderr().includes('node evil-1: no longer left out'), 10_000, 'evil-1 back');
    for (const name of [...Object.keys(said), 'good-7']) await send({ op: 'remove', name });
    for (const n of [n1, n2]) await until(() => !fdb(n).includes('192.168.50.3'), 10_000, `the others gone from ${n.name}`);
    for (const n of [n1, n2]) {
      await until(
        async () => metric((await status(n, '/metrics')).body, 'podwire_nodes_left_out{reason="conflict"}') === 0,
        10_000,
        'gauge',
      );
    }
  });

  it('a dropped watch and a 410 Gone are recovered from: changes made meanwhile still arrive', async () => {
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    const restarts = async () => metric((await status(n1, '/metrics')).body, 'podwire_api_watch_restarts_total') ?? 0;
    const before = await restarts();
    await send({ op: 'drop' });
    await send({ op: 'add', node: kubeNode('node4', '192.168.50.14', '10.244.4.0/24') });
    for (const n of [n1, n2]) await until(() => peerRoute(n, '10.244.4.0/24') !== '', 15_000, `node4 on ${n.name}`);

    await send({ op: 'compact' });
    await send({ op: 'remove', name: 'node4' });
    await send({ op: 'add', node: kubeNode('node5', '192.168.50.15', '10.244.5.0/24') });
    await send({ op: 'compact' }); // the events above are gone: only a re-list finds them
    for (const n of [n1, n2]) {
      await until(() => peerRoute(n, '10.244.5.0/24') !== '' && peerRoute(n, '10.244.4.0/24') === '', 15_000, `re-list on ${n.name}`);
    }
    expect(await restarts()).toBeGreaterThan(before);
  });

  it('bad input gets a clear message and changes nothing: a template that is not JSON, an API server that answers garbage, a Node with an invalid podCIDR', async () => {
    const [n1] = lab.nodes as [LabNode];
    const before = ipn(n1, 'link', 'show');
    const other = (name: string) => ({ ...n1, name, subnetFile: join(n1.dir, `${name}-subnet.json`), dir: join(n1.dir, name) });

    const template = join(n1.dir, 'template.json');
    writeFileSync(template, '{"cniVersion": "1.0.0", "name": ');
    const t = startAgent(other('node1'), ['--conflist-template', template, '--status-addr', 'off']);
    expect(await t.exit).toBe(1);
    expect(t.stderr()).toContain('conflist template: not JSON');

    // An "API server" that answers anything with text.
    const junk = spawn('ip', [
      'netns',
      'exec',
      n1.ns,
      process.execPath,
      '-e',
      "require('http').createServer((q, s) => s.end('hello')).listen(6444)",
    ]);
    agents.push(junk);
    const junkConfig = join(n1.dir, 'kubeconfig-junk');
    writeFileSync(junkConfig, kubeconfigYaml('http://127.0.0.1:6444'));
    const g = startAgent(other('garbled'), ['--status-addr', '127.0.0.1:9481'], junkConfig);
    await until(() => /API server \(nodes\): .+/.test(g.stderr()), 15_000, 'the garbled answer to be reported').catch((e) => {
      throw new Error(`${e.message}; stderr: ${g.stderr()}`);
    });
    expect((await status(n1, '/readyz', 9481)).body).toContain('waiting for the API server');
    g.proc.kill('SIGTERM');
    expect(await g.exit).toBe(0);

    await send({ op: 'add', node: kubeNode('broken', '192.168.50.98', '10.244.300.0/24') });
    const b = startAgent(other('broken'), ['--status-addr', '127.0.0.1:9482']);
    await until(() => b.stderr().includes('sync failed'), 15_000, 'the invalid podCIDR to be reported');
    expect(b.stderr()).toMatch(/sync failed: .*podCIDR.*10\.244\.300\.0\/24/);
    expect((await status(n1, '/readyz', 9482)).code).toBe(503);
    b.proc.kill('SIGTERM');
    expect(await b.exit).toBe(0);
    await send({ op: 'remove', name: 'broken' });

    expect(ipn(n1, 'link', 'show')).toBe(before);
    for (const name of ['garbled', 'broken']) expect(existsSync(join(n1.dir, `${name}-subnet.json`))).toBe(false);
  });

  it('a node whose podCIDR never comes fails with a message that says why, and changes nothing', async () => {
    const [n1] = lab.nodes as [LabNode];
    await send({ op: 'add', node: kubeNode('ghost', '192.168.50.99') });
    const before = ipn(n1, 'link', 'show');
    const ghost = startAgent({ ...n1, name: 'ghost', subnetFile: join(n1.dir, 'ghost-subnet.json'), dir: join(n1.dir, 'ghost') }, [
      '--podcidr-timeout',
      '1',
      '--status-addr',
      'off',
    ]);
    expect(await ghost.exit).toBe(1);
    expect(ghost.stderr()).toContain('node ghost has no podCIDR: was the cluster created with --pod-network-cidr?');
    expect(ipn(n1, 'link', 'show')).toBe(before);
    expect(existsSync(join(n1.dir, 'ghost-subnet.json'))).toBe(false);
  });

  it('SIGTERM while the API server is unreachable ends it at once, with the node untouched', async () => {
    const [n1] = lab.nodes as [LabNode];
    const dead = join(n1.dir, 'kubeconfig-dead');
    writeFileSync(dead, kubeconfigYaml('http://127.0.0.1:1'));
    const before = ipn(n1, 'link', 'show');
    const proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        n1.ns,
        BIN,
        'agent',
        '--kubeconfig',
        dead,
        '--node',
        'node1',
        '--subnet-file',
        join(n1.dir, 'dead-subnet.json'),
        '--cni-conf-dir',
        join(n1.dir, 'dead.d'),
        '--status-addr',
        'off',
      ],
      { stdio: 'ignore' },
    );
    const exit = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
    await new Promise((r) => setTimeout(r, 1500)); // a few failed lists and retries
    proc.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(ipn(n1, 'link', 'show')).toBe(before);
    expect(existsSync(join(n1.dir, 'dead-subnet.json')) || existsSync(join(n1.dir, 'dead.d'))).toBe(false);
  });

  it('fits the memory the DaemonSet gives it, and stops cleanly on SIGTERM', async () => {
    const running = agents.filter((a) => a.exitCode === null && a.spawnargs.includes('agent'));
    expect(running.length).toBe(2);
    // The DaemonSet's memory request and limit come from this measurement: the agent's peak resident
    // memory after setting up, syncing, watching and serving metrics must fit the request, which must not
    // be more than twice it, and the limit must leave it room to grow with the cluster.
    const mi = (q: string) => Number(/^(\d+)Mi$/.exec(q)![1]) * 2 ** 20;
    const ds = (loadAll(readFileSync(join(ROOT, 'deploy', 'podwire.yaml'), 'utf8')) as any[]).find((d) => d.kind === 'DaemonSet');
    const resources = ds.spec.template.spec.containers.find((c: any) => c.name === 'agent').resources;
    for (const a of running) {
      const peak = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${a.pid}/status`, 'utf8'))![1]) * 1024;
      expect(peak).toBeLessThanOrEqual(mi(resources.requests.memory));
      expect(mi(resources.requests.memory)).toBeLessThanOrEqual(2 * peak);
      expect(mi(resources.limits.memory)).toBeGreaterThanOrEqual(2 * peak);
    }
    const exits = running.map((a) => new Promise<number | null>((r) => a.on('exit', (c) => r(c))));
    for (const a of running) a.kill('SIGTERM');
    expect(await Promise.all(exits)).toEqual([0, 0]);
    // What it set up stays: pods keep working while the agent restarts (a DaemonSet rollout).
    const r = await run('ip', ['-n', lab.nodes[0]!.ns, 'link', 'show', 'podwire.1']);
    expect(r.code).toBe(0);
  });
});
