// `podwire agent` (the real binary) while its API server fails as real ones do — down, 500 then 429 with
// Retry-After, cut and truncated watches, 410, slow answers, an empty list, a list without this node, lists
// in pages — with node1's kernel sampled the whole time: no peer route or FDB entry that works is ever
// removed on the server's word alone, a change made during a fault reaches the kernel within 5 s of the
// server's return, and /readyz, the metrics, status and doctor say when the agent is blind.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { labDown } from '../../src/lab/netns.js';
import { run } from '../../src/runtime/run.js';
import { kubeNode, kubeconfigYaml } from '../helpers/fake-apiserver.mjs';
import { ApiServerProcess } from '../helpers/apiserver-process.js';
import { BIN, requireRoot } from '../helpers/netns.js';
import { until } from '../helpers/wait.js';
import { type AgentHandle, spawnAgent } from '../helpers/agent.js';

let lab: Lab;
let api: ApiServerProcess;
let agent: AgentHandle | undefined;
const PORT = 6443;
/** Nodes that exist only in the API server: node1 routes to their slices all the same. */
const PHANTOMS = [3, 4, 5].map((i) => kubeNode(`node${i}`, `192.168.50.${10 + i}`, `10.244.${i}.0/24`));

const send = (op: { op: string; [k: string]: unknown }) => api.send(op);

/** GET of node1's agent status server: the HTTP code and the body. */
async function status(n: LabNode, path: string): Promise<{ code: number; body: string }> {
  const r = await run('ip', ['netns', 'exec', n.ns, 'curl', '-s', '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:9471${path}`]);
  const i = r.stdout.lastIndexOf('\n');
  return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i).trim() };
}
const metric = (text: string, sample: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(sample + ' '));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
};

/** podwire's peer routes on a node: the slices it routes to. */
async function peerSlices(n: LabNode): Promise<string[]> {
  const r = await run('ip', ['-n', n.ns, '-j', 'route', 'show', 'proto', '112']);
  return (JSON.parse(r.stdout || '[]') as { dst: string }[]).map((x) => x.dst).sort();
}
async function fdbDsts(n: LabNode): Promise<string[]> {
  const r = await run('ip', ['netns', 'exec', n.ns, 'bridge', '-j', 'fdb', 'show', 'dev', 'podwire.1']);
  return (JSON.parse(r.stdout || '[]') as { dst?: string }[]).flatMap((x) => (x.dst ? [x.dst] : [])).sort();
}

/**
 * Samples a node's peer routes and FDB every 100 ms until stopped, and remembers every sample in which
 * one of `keep` (slices that must stay) was missing.
 */
function watchKernel(n: LabNode, keep: () => string[]) {
  const gaps: string[] = [];
  let samples = 0;
  let on = true;
  const done = (async () => {
    while (on) {
      const [routes, fdb] = await Promise.all([peerSlices(n), fdbDsts(n)]);
      samples++;
      for (const k of keep()) if (!routes.includes(k)) gaps.push(`${new Date().toISOString()} route ${k} missing`);
      if (fdb.length < keep().length) gaps.push(`${new Date().toISOString()} FDB has ${fdb.length} of ${keep().length}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    gaps,
    samples: () => samples,
    stop: async () => {
      on = false;
      await done;
    },
  };
}

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 2);
  const [n1, n2] = lab.nodes as [LabNode, LabNode];
  api = await ApiServerProcess.start(n1.ns, PORT, '0.0.0.0');
  const kubeconfig = join(n1.dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(`http://${n1.nodeIP}:${PORT}`));
  for (const n of [kubeNode('node1', n1.nodeIP, n1.podCIDR), kubeNode('node2', n2.nodeIP, n2.podCIDR), ...PHANTOMS]) {
    await send({ op: 'add', node: n });
  }
  agent = spawnAgent(n1, kubeconfig, ['--resync', '2']);
  await until(async () => (await peerSlices(n1)).length === 4, 15_000, 'node1 to route to its four peers');
  await until(async () => (await status(n1, '/readyz')).code === 200, 15_000, 'node1 ready');
}, 60_000);

afterAll(async () => {
  agent?.proc.kill('SIGTERM');
  api?.kill();
  await new Promise((r) => setTimeout(r, 200));
  labDown();
});

describe('podwire agent when the API server fails', () => {
  it('down: the kernel stays; /readyz says since when it is blind, /healthz stays ok; a change made meanwhile arrives within 5 s of its return', async () => {
    const [n1] = lab.nodes as [LabNode];
    const k = watchKernel(n1, () => ['10.244.2.0/24', '10.244.3.0/24', '10.244.4.0/24', '10.244.5.0/24']);
    await send({ op: 'stop' });
    // The watch is cut first, then every retry is refused; /readyz fails once that has lasted a few seconds.
    await until(async () => (await status(n1, '/readyz')).body.includes('nodes: connection refused'), 15_000, '/readyz to fail');
    const ready = await status(n1, '/readyz');
    expect(ready.code).toBe(503);
    expect(ready.body).toMatch(/^not following the API server since \d{4}-\d\d-\d\dT[\d:.]+Z \(\d+ s\): nodes: connection refused; /);
    expect(await status(n1, '/healthz')).toEqual({ code: 200, body: 'ok' });
    const m = (await status(n1, '/metrics')).body;
    expect(metric(m, 'podwire_api_up{resource="nodes"}')).toBe(0);
    expect(metric(m, 'podwire_api_up{resource="pods"}')).toBe(0);
    expect(metric(m, 'podwire_api_last_contact_age_seconds{resource="nodes"}')).toBeGreaterThan(0);
    // status and doctor, run on the node, say so too.
    const conflist = join(n1.dir, 'net.d', '10-podwire.conflist');
    const st = JSON.parse((await run('ip', ['netns', 'exec', n1.ns, BIN, 'status', '--conflist', conflist, '--json'])).stdout);
    expect(st.api.resources.nodes).toMatchObject({ up: false, cause: 'connection refused' });
    expect(st.problems.join('\n')).toContain('the agent has not followed the API server since');
    const doc = JSON.parse(
      (await run('ip', ['netns', 'exec', n1.ns, BIN, 'doctor', '--conflist', conflist, '--json', '--no-probe'])).stdout,
    );
    expect(doc.findings.find((f: { check: string }) => f.check === 'agent-api')).toMatchObject({
      ok: false,
      what: expect.stringContaining('nodes: connection refused'),
    });

    await new Promise((r) => setTimeout(r, 7000)); // long enough for the pauses to reach their longest
    await send({ op: 'add', node: kubeNode('node6', '192.168.50.16', '10.244.6.0/24') }); // made while it is away
    await send({ op: 'start' });
    const back = [...api.events].reverse().find((e: { back?: number }) => e.back).back as number;
    await until(async () => (await peerSlices(n1)).includes('10.244.6.0/24'), 15_000, 'node6 in the kernel');
    expect(Date.now() - back).toBeLessThan(5000);
    await until(async () => (await status(n1, '/readyz')).code === 200, 10_000, '/readyz back');
    await k.stop();
    expect(k.samples()).toBeGreaterThan(20);
    expect(k.gaps).toEqual([]);
    const doc2 = JSON.parse(
      (await run('ip', ['netns', 'exec', n1.ns, BIN, 'doctor', '--conflist', conflist, '--json', '--no-probe'])).stdout,
    );
    expect(doc2.findings.find((f: { check: string }) => f.check === 'agent-api')).toMatchObject({ ok: true });
  }, 60_000);

  it('500s, then 429s with Retry-After, cut watches: nothing removed; a DELETE made meanwhile is taken once it is back', async () => {
    const [n1] = lab.nodes as [LabNode];
    let keep = ['10.244.2.0/24', '10.244.3.0/24', '10.244.4.0/24', '10.244.5.0/24', '10.244.6.0/24'];
    const k = watchKernel(n1, () => keep);
    await send({ op: 'fault', fault: { status: 500, ms: 3000 } });
    await send({ op: 'drop' });
    await new Promise((r) => setTimeout(r, 3100));
    await send({ op: 'fault', fault: { status: 429, retryAfter: 1, ms: 3000 } });
    await send({ op: 'drop' });
    keep = keep.filter((x) => x !== '10.244.6.0/24');
    await send({ op: 'remove', name: 'node6' }); // a real deletion, during the fault
    await new Promise((r) => setTimeout(r, 3000));
    const back = Date.now();
    await until(async () => !(await peerSlices(n1)).includes('10.244.6.0/24'), 15_000, 'node6 gone');
    expect(Date.now() - back).toBeLessThan(5000);
    await k.stop();
    expect(k.gaps).toEqual([]);
    expect(agent!.stderr()).toMatch(/API server \(nodes\): HTTP 500/);
    expect(agent!.stderr()).toMatch(/: HTTP 429 TooManyRequests.*\(Retry-After 1 s\)/);
    expect(agent!.stderr()).not.toMatch(/MaxListeners|memory leak/); // no listener left behind by all those retries
  }, 60_000);

  it('an empty list, a list without this node: held back or refused, the kernel untouched; lists in pages, truncated and slow answers converge', async () => {
    const [n1] = lab.nodes as [LabNode];
    const keep = ['10.244.2.0/24', '10.244.3.0/24', '10.244.4.0/24', '10.244.5.0/24'];
    const k = watchKernel(n1, () => keep);
    const held = async (outcome: string) =>
      metric((await status(n1, '/metrics')).body, `podwire_api_lists_held_total{resource="nodes",outcome="${outcome}"}`) ?? 0;

    // An empty list has no node1 in it: not the cluster, refused.
    await send({ op: 'fault', fault: { emptyLists: 1 } });
    await send({ op: 'compact' }); // 410: the agent lists again, and gets nothing
    await until(async () => (await held('refused')) >= 1, 10_000, 'the empty list refused');
    expect(agent!.stderr()).toContain(
      "API server (nodes): a list of nodes without this node's own Node node1: not taken as the cluster: refused",
    );

    // Three of five peers missing, with no DELETE events: held until another list tells; it has them all.
    await send({ op: 'fault', fault: { without: ['node2', 'node3', 'node4'], times: 1 } });
    await send({ op: 'compact' });
    await until(async () => (await held('held')) >= 1, 10_000, 'the partial list held back');
    expect(agent!.stderr()).toContain('API server (nodes): a list of nodes without 3 of the 5 known, and no DELETE events: held back');

    await send({ op: 'fault', fault: { pageSize: 2, truncate: 1, slowMs: 1500 } });
    await send({ op: 'compact' });
    await send({ op: 'add', node: kubeNode('node7', '192.168.50.17', '10.244.7.0/24') });
    await until(async () => (await peerSlices(n1)).includes('10.244.7.0/24'), 15_000, 'node7 through pages and a slow server');
    await send({ op: 'fault', fault: { clear: true } });
    await until(async () => (await status(n1, '/readyz')).code === 200, 10_000, 'ready');
    await k.stop();
    expect(k.gaps).toEqual([]);
    expect(await held('confirmed')).toBe(0); // nothing was ever removed on a list's word
  }, 60_000);
});
