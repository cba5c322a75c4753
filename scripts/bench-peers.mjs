// @ts-check
// npm run bench (second part): `podwire peers sync` against 10, 100, 1000 and 5000 peers, VXLAN backend
// (three kernel entries per peer: neighbour, FDB, route). For each size, in a fresh namespace: a full sync
// from empty, a no-op re-sync, and a sync after one peer changed its MAC; wall time of the whole command
// (start-up included) and the number of processes podwire started (from its --json report).
// Everything happens inside namespaces made here and removed at the end; nothing is sent anywhere.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveResults } from './bench-results.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'dist', 'podwire');
const SIZES = (process.env.BENCH_PEERS ?? '10,100,1000,5000').split(',').map(Number);
const ip = (/** @type {string[]} */ ...args) => execFileSync('ip', args, { encoding: 'utf8' });

/** @param {number} peers @param {boolean} [changed] */
function cluster(peers, changed = false) {
  const nodes = [];
  for (let i = 0; i <= peers; i++) {
    const k = i + 1; // Node IPs 10.1.0.1, 10.1.0.2, ... on the namespace's 10.1.0.0/16 underlay
    nodes.push({
      name: `node${i}`,
      nodeIP: `10.1.${k >> 8}.${k & 255}`,
      podCIDR: `10.${128 + (i >> 8)}.${i & 255}.0/24`,
      ...(changed && i === 1 ? { vtepMac: '0e:00:00:00:00:01' } : {}),
    });
  }
  return JSON.stringify({ clusterCIDR: '10.128.0.0/9', backend: 'vxlan', nodes });
}

/** @param {string} ns @param {string[]} args */
function timed(ns, args) {
  const t0 = performance.now();
  const out = execFileSync('ip', ['netns', 'exec', ns, BIN, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { ms: performance.now() - t0, report: out.trim() ? JSON.parse(out) : undefined };
}

const rows = [];
const dir = mkdtempSync(join(tmpdir(), 'podwire-bench-peers-'));
const ns = `pwbpeers${process.pid % 100000}`;
// Ctrl-C or a kill skips `finally`: what this run made goes then too.
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.once(sig, () => {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}
try {
  for (const n of SIZES) {
    process.stderr.write(`bench: peers sync with ${n} peers...\n`);
    ip('netns', 'add', ns);
    try {
      ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1');
      ip('-n', ns, 'addr', 'add', '10.1.0.1/16', 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'eth1', 'up');
      const file = join(dir, 'cluster.json');
      writeFileSync(file, cluster(n));
      const flags = ['--cluster', file, '--node', 'node0', '--subnet-file', join(dir, 'subnet.json'), '--json'];
      timed(ns, ['node', 'up', ...flags]);
      const full = timed(ns, ['peers', 'sync', ...flags]);
      const noop = timed(ns, ['peers', 'sync', ...flags]);
      writeFileSync(file, cluster(n, true));
      const one = timed(ns, ['peers', 'sync', ...flags]);
      const routes = ip('-n', ns, 'route', 'show', 'proto', '112').trim().split('\n').length;
      if (routes !== n || full.report.changes !== 3 * n || noop.report.changes !== 0 || one.report.changes !== 3) {
        throw new Error(`unexpected: ${routes} routes, changes ${full.report.changes}/${noop.report.changes}/${one.report.changes}`);
      }
      rows.push({ peers: n, full, noop, one });
    } finally {
      ip('netns', 'del', ns);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const f = (/** @type {number} */ x) => x.toFixed(1);
const lines = [
  '| peers | full sync ms (processes) | no-op re-sync ms (processes, changes) | one peer changed ms (processes, changes) |',
  '|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.peers} | ${f(r.full.ms)} (${r.full.report.processes}) | ${f(r.noop.ms)} (${r.noop.report.processes}, ` +
      `${r.noop.report.changes}) | ${f(r.one.ms)} (${r.one.report.processes}, ${r.one.report.changes}) |`,
  ),
];
process.stdout.write('\npeers sync (vxlan: neighbour + FDB + route per peer), whole command incl. start-up:\n' + lines.join('\n') + '\n');
saveResults(
  'peers',
  rows.map((r) => ({
    peers: r.peers,
    full: r.full.ms,
    noop: r.noop.ms,
    one: r.one.ms,
    processes: [r.full.report.processes, r.noop.report.processes, r.one.report.processes],
  })),
);
