// @ts-check
// npm run bench (third part): `podwire agent` following an API server of many Nodes, as a DaemonSet's
// agent does on a big cluster. In a namespace made here: the fake API server (test/helpers, the same one
// the agent tests use) listing 5000 Nodes (plus a few hostile ones, which each agent judges on its own and
// leaves out), the agent started, time until the kernel has a route to every good node; then 100 Nodes
// change their InternalIP at once (new VTEP MACs and FDB destinations), time until the kernel agrees; and
// the agent's peak resident memory. Nothing leaves the namespace.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { agentNode, until } from './bench-agent-node.mjs';
import { saveResults } from './bench-results.mjs';

const NODES = Number(process.env.BENCH_AGENT_NODES ?? 5000);
const CHANGED = 100;
const say = (/** @type {string} */ m) => process.stderr.write(`bench: ${m}\n`);

const nodeIP = (/** @type {number} */ i, moved = false) => `10.1.${(moved ? 200 : 0) + ((i + 1) >> 8)}.${(i + 1) & 255}`;
/** @param {number} i @param {boolean} [moved] */
function node(i, moved = false) {
  const name = `node${i}`;
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, uid: `uid-${name}`, annotations: {}, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { podCIDR: `10.${128 + (i >> 8)}.${i & 255}.0/24`, podCIDRs: [`10.${128 + (i >> 8)}.${i & 255}.0/24`] },
    status: { addresses: [{ type: 'InternalIP', address: nodeIP(i, moved) }] },
  };
}
const hostile = [
  { ...node(NODES + 1), metadata: { name: 'evil-outside', annotations: {} }, spec: { podCIDRs: ['10.0.0.0/24'] } },
  {
    ...node(NODES + 2),
    metadata: { name: 'evil-loopback', annotations: {} },
    status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }] },
  },
];

const n = await agentNode('pwbagent');
const { ns, ip } = n;
const routes = () => ip('-n', ns, 'route', 'show', 'proto', '112').split('\n').filter(Boolean).length;
const moved = () =>
  (
    execFileSync('ip', ['netns', 'exec', ns, 'bridge', 'fdb', 'show', 'dev', 'podwire.1'], { encoding: 'utf8', maxBuffer: 64 << 20 }).match(
      /dst 10\.1\.2\d\d\./g,
    ) ?? []
  ).length;

let result;
try {
  say(`listing ${NODES} Nodes (+${hostile.length} hostile)...`);
  await n.send([...Array.from({ length: NODES }, (_, i) => node(i)), ...hostile].map((x) => ({ op: 'add', node: x })));
  const t0 = performance.now();
  const { agent, err } = n.startAgent();
  await until(() => routes() === NODES - 1, 120_000).catch((e) => {
    throw new Error(`${e.message}: ${routes()} routes; agent said: ${err().slice(-2000)}`);
  });
  const converge = performance.now() - t0;
  const leftOut = (err().match(/left out node /g) ?? []).length;
  say(`changing ${CHANGED} Nodes' InternalIP at once...`);
  const t1 = performance.now();
  void n.send(Array.from({ length: CHANGED }, (_, k) => ({ op: 'update', node: node(k + 1, true) }))).catch(() => {});
  await until(() => moved() === CHANGED, 60_000);
  const change = performance.now() - t1;
  // `ip netns exec` execs the binary in its own place: the child is the agent.
  const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
  const kb = (/** @type {string} */ k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
  result = { nodes: NODES, converge, change, changed: CHANGED, leftOut, rssMB: kb('VmRSS'), peakMB: kb('VmHWM') };
} finally {
  for (const p of n.procs) p.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  n.cleanup();
}

const r = result;
process.stdout.write(
  `\nagent following ${r.nodes} Nodes (vxlan; ${r.leftOut} hostile Nodes left out, each judged on its own):\n` +
    '| Nodes | list → kernel has every route | 100 Nodes change at once → kernel agrees | agent RSS (peak) |\n|---:|---:|---:|---:|\n' +
    `| ${r.nodes} | ${(r.converge / 1000).toFixed(2)} s | ${(r.change / 1000).toFixed(2)} s | ${r.rssMB.toFixed(0)} MB (${r.peakMB.toFixed(0)} MB) |\n`,
);
saveResults('agent', r);
