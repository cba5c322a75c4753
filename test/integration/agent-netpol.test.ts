// The agent enforces NetworkPolicy from the API server: Namespaces, Pods and NetworkPolicies arrive by
// list/watch from the fake API server, a change reaches the kernel within a second, a new pod changes
// set elements and not the rules, a restarted agent keeps enforcing with no gap, the metrics count
// policies and rules, and --network-policy=false removes the table.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabNode, type LabPod } from '../../src/lab/lab.js';
import { labDown } from '../../src/lab/netns.js';
import { run } from '../../src/runtime/run.js';
import { kubeNode, kubeconfigYaml } from '../helpers/fake-apiserver.mjs';
import { ApiServerProcess } from '../helpers/apiserver-process.js';
import { BIN, ROOT, requireRoot, sh } from '../helpers/netns.js';

const FORGE = join(ROOT, 'test', 'helpers', 'forge.py');
import { until } from '../helpers/wait.js';
import { type AgentHandle, spawnAgent } from '../helpers/agent.js';
import { bringUp } from '../../src/lab/index.js';

let lab: Lab;
let api: ApiServerProcess;
let kubeconfig = '';
const agents: ChildProcess[] = [];
const PORT = 6443;
let pods: Record<string, LabPod> = {};
const servers: ChildProcess[] = [];
// A client that connects and exits resets the connection: the server shrugs that off.
const SERVER = "require('net').createServer((s)=>{s.on('error',()=>{});s.end('ok')}).listen(80)";

function startAgent(n: LabNode, extra: string[] = []): AgentHandle {
  const a = spawnAgent(n, kubeconfig, ['--status-addr', '127.0.0.1:9471', ...extra]);
  agents.push(a.proc);
  return a;
}

/** A TCP connect from one pod to another's port 80, given up after 400 ms (a dropped SYN). */
async function reaches(from: LabPod, to: LabPod): Promise<boolean> {
  const js = `const s=require('net').connect(80,'${to.ip}');s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(2),400)`;
  return (await run('ip', ['netns', 'exec', from.ns, process.execPath, '-e', js])).code === 0;
}

const podObject = (ns: string, name: string, p: LabPod, labels: Record<string, string>) => ({
  metadata: { namespace: ns, name, labels },
  spec: { nodeName: p.node.name },
  status: { podIPs: [{ ip: p.ip }] },
});
const metric = async (n: LabNode, sample: string): Promise<number | undefined> => {
  const r = await run('ip', ['netns', 'exec', n.ns, 'curl', '-s', 'http://127.0.0.1:9471/metrics']);
  const line = r.stdout.split('\n').find((l) => l.startsWith(sample + ' '));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
};
const table = (n: LabNode) => sh('ip', ['netns', 'exec', n.ns, 'sh', '-c', 'nft list table inet podwire-policy 2>/dev/null || true']);

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 2);
  await bringUp(lab);
  const [n1, n2] = lab.nodes as [LabNode, LabNode];
  api = await ApiServerProcess.start(n1.ns, PORT, '0.0.0.0');
  kubeconfig = join(n1.dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(`http://${n1.nodeIP}:${PORT}`));
  await api.send({ op: 'add', node: kubeNode('node1', n1.nodeIP, n1.podCIDR) });
  await api.send({ op: 'add', node: kubeNode('node2', n2.nodeIP, n2.podCIDR) });
  pods = { xa: await lab.addPod(n1, 'xa'), xb: await lab.addPod(n1, 'xb'), ya: await lab.addPod(n2, 'ya') };
  for (const p of Object.values(pods)) {
    servers.push(
      spawn('ip', ['netns', 'exec', p.ns, process.execPath, '-e', SERVER], {
        stdio: 'ignore',
      }),
    );
  }
  await new Promise((r) => setTimeout(r, 300)); // servers listening
  for (const n of ['x', 'y']) await api.send({ op: 'put', kind: 'Namespace', object: { metadata: { name: n, labels: { ns: n } } } });
  await api.send({ op: 'put', kind: 'Pod', object: podObject('x', 'a', pods.xa!, { pod: 'a' }) });
  await api.send({ op: 'put', kind: 'Pod', object: podObject('x', 'b', pods.xb!, { pod: 'b' }) });
  await api.send({ op: 'put', kind: 'Pod', object: podObject('y', 'a', pods.ya!, { pod: 'a' }) });
}, 90_000);

afterAll(async () => {
  for (const a of agents) a.kill('SIGTERM');
  for (const s of servers) s.kill();
  api?.kill();
  await new Promise((r) => setTimeout(r, 200));
  labDown();
});

describe('the agent enforces NetworkPolicy from the API server', () => {
  let a1: ReturnType<typeof startAgent>;

  it('with no policy: no table, every pod reaches every pod', async () => {
    a1 = startAgent(lab.nodes[0]!, ['--log-file', join(lab.nodes[0]!.dir, 'agent.log')]);
    startAgent(lab.nodes[1]!);
    await until(() => a1.stderr().includes('ready, NetworkUnavailable=False'), 20_000, 'node1 ready');
    expect(table(lab.nodes[0]!)).toBe('');
    expect(await reaches(pods.xb!, pods.xa!)).toBe(true);
    expect(await reaches(pods.ya!, pods.xa!)).toBe(true);
  });

  it('a policy sent to the API server reaches the kernel: x/a takes traffic from namespace y only', async () => {
    await api.send({
      op: 'put',
      kind: 'NetworkPolicy',
      object: {
        metadata: { namespace: 'x', name: 'from-y' },
        spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] },
      },
    });
    // How fast is the benchmark's (scripts/bench-policy.mjs): here only that it arrives.
    await until(async () => !(await reaches(pods.xb!, pods.xa!)), 5_000, 'x/b -> x/a to be dropped');
    expect(await reaches(pods.ya!, pods.xa!)).toBe(true); // across nodes, over VXLAN
    expect(await reaches(pods.xa!, pods.xb!)).toBe(true); // x/b is not selected
    expect(await metric(lab.nodes[0]!, 'podwire_network_policies')).toBe(1);
    expect(await metric(lab.nodes[0]!, 'podwire_network_policy_rules')).toBeGreaterThan(0);
    expect(a1.stderr()).toMatch(/network policy: full \(1 policies, \d+ rules/);
  });

  it('every denial seen: podwire drops (from the agent) names the pod and its policy, the log says it, the metric counts it; a forged source names its sender', async () => {
    const n1 = lab.nodes[0]!;
    const p = spawn('ip', ['netns', 'exec', n1.ns, BIN, 'drops', '--json', '--seconds', '3']);
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (err += d));
    await until(() => err.includes("this node's agent"), 5_000, 'podwire drops to follow the agent');
    expect(await reaches(pods.xb!, pods.xa!)).toBe(false);
    const mac = (ns: string, dev: string) => JSON.parse(sh('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev]))[0].address as string;
    // x/b forges x/a's address: dropped at its port, and named as itself.
    sh('ip', [
      'netns',
      'exec',
      pods.xb!.ns,
      'python3',
      FORGE,
      'udp',
      'eth0',
      mac(pods.xb!.ns, 'eth0'),
      mac(n1.ns, 'cni0'),
      pods.xa!.ip,
      pods.ya!.ip,
      '5000',
      'as-a',
    ]);
    await new Promise((r) => p.on('exit', r));
    const seen = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(seen).toContainEqual(
      expect.objectContaining({
        reason: 'ingress',
        pod: 'x/a',
        policies: ['x/from-y'],
        src: pods.xb!.ip,
        dst: pods.xa!.ip,
        proto: 'tcp',
        dport: 80,
      }),
    );
    expect(seen).toContainEqual(expect.objectContaining({ reason: 'ip4', pod: 'x/b', port: pods.xb!.veth, src: pods.xa!.ip }));
    expect(await metric(n1, 'podwire_dropped_packets_total{reason="ingress",namespace="x",policy="x/from-y"}')).toBeGreaterThan(0);
    expect(await metric(n1, 'podwire_dropped_packets_total{reason="ip4",namespace="x",policy=""}')).toBeGreaterThan(0);
    const logged = readFileSync(join(n1.dir, 'agent.log'), 'utf8');
    expect(logged).toContain(`x/b (on ${pods.xb!.veth}) sent it from ${pods.xa!.ip}, which is not its address`);
    expect(logged).toContain('to x/a, which x/from-y isolate for ingress, and none of them allows it');
  });

  it('a pod joining a selected namespace changes set elements, not the rules', async () => {
    const before = await metric(lab.nodes[0]!, 'podwire_network_policy_rules');
    const yb = await lab.addPod(lab.nodes[1]!, 'yb');
    servers.push(
      spawn('ip', ['netns', 'exec', yb.ns, process.execPath, '-e', SERVER], {
        stdio: 'ignore',
      }),
    );
    // Before the API server knows it, y/b is no peer of the policy: dropped.
    expect(await reaches(yb, pods.xa!)).toBe(false);
    await api.send({ op: 'put', kind: 'Pod', object: podObject('y', 'b', yb, { pod: 'b' }) });
    await until(() => reaches(yb, pods.xa!), 5_000, 'y/b -> x/a to be allowed');
    // The agent says so once the transaction is in: a moment after the packets pass.
    await until(() => /network policy: elements/.test(a1.stderr()), 5_000, 'the agent to report an elements update');
    expect(await metric(lab.nodes[0]!, 'podwire_network_policy_rules')).toBe(before);
  });

  it('closed from the first packet: a new pod is held at the gate until the agent has placed it, then judged', async () => {
    const [n1] = lab.nodes as [LabNode];
    // The agent says the gate is up once it enforces a policy; the plugin then holds every new pod.
    await until(
      () => sh('ip', ['netns', 'exec', n1.ns, 'nft', 'list', 'table', 'inet', 'podwire-gate']).includes('pending4'),
      5_000,
      'the gate',
    );
    const xa2 = await lab.addPod(n1, 'xa2');
    servers.push(spawn('ip', ['netns', 'exec', xa2.ns, process.execPath, '-e', SERVER], { stdio: 'ignore' }));
    await new Promise((r) => setTimeout(r, 300));
    // x/a2 has pod=a: from-y will select it. Before the agent knows it, x/b would reach it without the gate.
    expect(sh('ip', ['netns', 'exec', n1.ns, 'nft', 'list', 'set', 'inet', 'podwire-gate', 'pending4'])).toContain(xa2.ip);
    expect(await reaches(pods.xb!, xa2)).toBe(false);
    expect(await reaches(pods.ya!, xa2)).toBe(false); // held both ways, the allowed peer too
    expect(await reaches(xa2, pods.xb!)).toBe(false);
    // Its own node still reaches it (kubelet's probes are not forwarded).
    expect((await run('ip', ['netns', 'exec', n1.ns, 'busybox', 'ping', '-c', '1', '-W', '1', xa2.ip])).code).toBe(0);
    const seen = Date.now();
    await api.send({ op: 'put', kind: 'Pod', object: podObject('x', 'a2', xa2, { pod: 'a' }) });
    await until(() => reaches(pods.ya!, xa2), 5_000, 'y/a -> x/a2 once placed');
    const placed = Date.now() - seen;
    expect(await reaches(pods.xb!, xa2)).toBe(false); // placed, and judged by from-y
    expect(await reaches(xa2, pods.xb!)).toBe(true); // no egress policy
    expect(sh('ip', ['netns', 'exec', n1.ns, 'nft', 'list', 'set', 'inet', 'podwire-gate', 'pending4'])).not.toContain(xa2.ip);
    process.stderr.write(`gate: x/a2 placed ${placed} ms after its Pod object reached the API server\n`);
    // Its DEL leaves nothing at the gate either.
    await lab.delPod(xa2);
  });

  it("a reused address never inherits the old pod's rights: a pod given y/a's address is held, then judged as itself", async () => {
    const [, n2] = lab.nodes as [LabNode, LabNode];
    const old = pods.ya!;
    await lab.delPod(old); // y/a's Pod object stays in the API server a while (a stale list, a slow kubelet)
    const xc = await lab.addPod(n2, 'xc', { portMappings: [] }, false, `IgnoreUnknown=1;IP=${old.ip}`);
    expect(xc.ip).toBe(old.ip);
    // y/a's address is in from-y's peers: without the gate, x/c would reach x/a as y/a.
    expect(await reaches(xc, pods.xa!)).toBe(false);
    await api.send({ op: 'delete', kind: 'Pod', namespace: 'y', name: 'a' });
    await api.send({ op: 'put', kind: 'Pod', object: podObject('x', 'c', xc, { pod: 'c' }) });
    await until(() => reaches(xc, pods.xb!), 5_000, 'x/c placed (it reaches x/b, which no policy selects)');
    expect(await reaches(xc, pods.xa!)).toBe(false); // judged as x/c: namespace x is not a peer of from-y
    // The old pod back under its own name for the tests after this one.
    await lab.delPod(xc);
    pods.ya = await lab.addPod(n2, 'ya');
    servers.push(spawn('ip', ['netns', 'exec', pods.ya.ns, process.execPath, '-e', SERVER], { stdio: 'ignore' }));
    await new Promise((r) => setTimeout(r, 300));
    await api.send({ op: 'put', kind: 'Pod', object: podObject('y', 'a', pods.ya, { pod: 'a' }) });
    await until(() => reaches(pods.ya!, pods.xa!), 5_000, 'y/a back');
  });

  it('an agent killed (SIGKILL, as the OOM killer does) opens nothing: the table and the gate stay, a pod started meanwhile is held; back, it places it', async () => {
    a1.proc.kill('SIGKILL');
    await a1.exit;
    expect(table(lab.nodes[0]!)).toContain('p-');
    expect(await reaches(pods.xb!, pods.xa!)).toBe(false);
    const late = await lab.addPod(lab.nodes[0]!, 'xd');
    expect(await reaches(late, pods.xb!)).toBe(false); // held: nobody placed it
    await api.send({ op: 'put', kind: 'Pod', object: podObject('x', 'd', late, { pod: 'd' }) });
    expect(await reaches(late, pods.xb!)).toBe(false); // still held: the agent is gone
    a1 = startAgent(lab.nodes[0]!, ['--log-file', join(lab.nodes[0]!.dir, 'agent.log')]);
    await until(() => /network policy: full/.test(a1.stderr()), 15_000, 'the policy table rewritten');
    expect(await reaches(pods.xb!, pods.xa!)).toBe(false);
    expect(await reaches(pods.ya!, pods.xa!)).toBe(true);
    await until(() => reaches(late, pods.xb!), 5_000, 'the late pod placed by the agent back');
    await lab.delPod(late);
  });

  it('deleting the policy removes the table; --network-policy=false removes it too', async () => {
    await api.send({ op: 'delete', kind: 'NetworkPolicy', namespace: 'x', name: 'from-y' });
    await until(async () => table(lab.nodes[0]!) === '', 5_000, 'the table to go');
    expect(await reaches(pods.xb!, pods.xa!)).toBe(true);
    await api.send({
      op: 'put',
      kind: 'NetworkPolicy',
      object: { metadata: { namespace: 'x', name: 'deny' }, spec: { podSelector: {} } },
    });
    await until(async () => table(lab.nodes[0]!) !== '', 5_000, 'the table back');
    a1.proc.kill('SIGTERM');
    await a1.exit;
    a1 = startAgent(lab.nodes[0]!, ['--network-policy=false']);
    await until(() => a1.stderr().includes('network policy: off'), 15_000, 'policy off');
    expect(table(lab.nodes[0]!)).toBe('');
    expect(await reaches(pods.xb!, pods.xa!)).toBe(true);
  });
});
