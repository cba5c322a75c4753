// @ts-check
// npm run bench (third part): `podwire agent` following an API server of many Nodes, as a DaemonSet's
// agent does on a big cluster. In a namespace made here: the fake API server (test/helpers, the same one
// the agent tests use) listing 5000 Nodes (plus a few hostile ones, which each agent judges on its own and
// leaves out), the agent started, time until the kernel has a route to every good node; then 100 Nodes
// change their InternalIP at once (new VTEP MACs and FDB destinations), time until the kernel agrees; and
// the agent's peak resident memory. Nothing leaves the namespace.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { saveResults } from './bench-results.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'dist', 'podwire');
const NODES = Number(process.env.BENCH_AGENT_NODES ?? 5000);
const CHANGED = 100;
const PORT = 6443;
const ip = (/** @type {string[]} */ ...args) => execFileSync('ip', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
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

const ns = `pwbagent${process.pid % 100000}`;
const dir = mkdtempSync(join(tmpdir(), 'podwire-bench-agent-'));
/** @type {import('node:child_process').ChildProcess[]} */
const procs = [];
/** @param {() => boolean} ok @param {number} ms */
async function until(ok, ms) {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
const routes = () => ip('-n', ns, 'route', 'show', 'proto', '112').split('\n').filter(Boolean).length;
const moved = () =>
  (
    execFileSync('ip', ['netns', 'exec', ns, 'bridge', 'fdb', 'show', 'dev', 'podwire.1'], { encoding: 'utf8', maxBuffer: 64 << 20 }).match(
      /dst 10\.1\.2\d\d\./g,
    ) ?? []
  ).length;

/** What this run made: its namespace and its temp dir. Also on Ctrl-C or a kill, which skip `finally`. */
function cleanup() {
  for (const p of procs) p.kill('SIGKILL');
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.once(sig, () => {
    cleanup();
    process.exit(130);
  });
}

let result;
try {
  ip('netns', 'add', ns);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1');
  ip('-n', ns, 'addr', 'add', '10.1.0.1/16', 'dev', 'eth0');
  ip('-n', ns, 'link', 'set', 'eth0', 'up');
  ip('-n', ns, 'link', 'set', 'eth1', 'up');
  const api = spawn(
    'nsenter',
    [`--net=/run/netns/${ns}`, process.execPath, join(root, 'test', 'helpers', 'fake-apiserver.mjs'), String(PORT), '127.0.0.1'],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  procs.push(api);
  /** @type {any[]} */
  const events = [];
  createInterface({ input: /** @type {import('node:stream').Readable} */ (api.stdout) }).on('line', (l) => events.push(JSON.parse(l)));
  await until(() => events.some((e) => e.listening), 10_000);
  say(`listing ${NODES} Nodes (+${hostile.length} hostile)...`);
  const ops = [...Array.from({ length: NODES }, (_, i) => node(i)), ...hostile].map((n) => JSON.stringify({ op: 'add', node: n }) + '\n');
  api.stdin?.write(ops.join(''));
  await until(() => events.filter((e) => e.done === 'add').length === ops.length, 60_000);
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: "http://127.0.0.1:${PORT}", insecure-skip-tls-verify: true}\n  name: b\n` +
      'contexts:\n- context: {cluster: b, user: a}\n  name: b\ncurrent-context: b\nusers:\n- name: a\n  user: {token: "t"}\n',
  );
  const t0 = performance.now();
  const agent = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      BIN,
      'agent',
      '--kubeconfig',
      kubeconfig,
      '--node',
      'node0',
      '--cluster-cidr',
      '10.128.0.0/9',
      '--subnet-file',
      join(dir, 'subnet.json'),
      '--cni-conf-dir',
      join(dir, 'net.d'),
      '--status-addr',
      'off',
      '--resync',
      '600',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  procs.push(agent);
  let err = '';
  agent.stderr?.on('data', (d) => (err += d));
  await until(() => routes() === NODES - 1, 120_000).catch((e) => {
    throw new Error(`${e.message}: ${routes()} routes; agent said: ${err.slice(-2000)}`);
  });
  const converge = performance.now() - t0;
  const leftOut = (err.match(/left out node /g) ?? []).length;
  say(`changing ${CHANGED} Nodes' InternalIP at once...`);
  const t1 = performance.now();
  api.stdin?.write(Array.from({ length: CHANGED }, (_, k) => JSON.stringify({ op: 'update', node: node(k + 1, true) }) + '\n').join(''));
  await until(() => moved() === CHANGED, 60_000);
  const change = performance.now() - t1;
  // `ip netns exec` execs the binary in its own place: the child is the agent.
  const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
  const kb = (/** @type {string} */ k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
  result = { nodes: NODES, converge, change, changed: CHANGED, leftOut, rssMB: kb('VmRSS'), peakMB: kb('VmHWM') };
} finally {
  for (const p of procs) p.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  cleanup();
}

const r = result;
process.stdout.write(
  `\nagent following ${r.nodes} Nodes (vxlan; ${r.leftOut} hostile Nodes left out, each judged on its own):\n` +
    '| Nodes | list → kernel has every route | 100 Nodes change at once → kernel agrees | agent RSS (peak) |\n|---:|---:|---:|---:|\n' +
    `| ${r.nodes} | ${(r.converge / 1000).toFixed(2)} s | ${(r.change / 1000).toFixed(2)} s | ${r.rssMB.toFixed(0)} MB (${r.peakMB.toFixed(0)} MB) |\n`,
);
saveResults('agent', r);
