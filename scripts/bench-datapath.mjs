// @ts-check
// npm run bench (fourth part): what every packet costs, each path beside its limit in the same run. TCP
// throughput (iperf3, 1 and 4 streams) and request/response latency (scripts/rr.mjs, p50 and p99) for pod
// <-> pod on one node (limit: two namespaces joined by a bare veth pair), pod <-> pod across nodes by
// VXLAN over IPv4 and IPv6 and by host-gw (limit: node <-> node on the lab's underlay, in the same lab),
// and a pod <-> the outside host through masquerade. Labs are kept only while measured
// (`podwire lab --keep`, then `lab-down`). Each path is measured in turns with its limit (median throughput, best latency of three). Everything is inside the lab's namespaces and two of our own.
// Then the spoofing checks' cost per packet on each path: 64-byte UDP packets/s with the guard table and
// without it, in turns (a 64 KB TCP segment pays a check once, so throughput hides it in the noise).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveResults } from './bench-results.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'dist', 'podwire');
const RR = join(root, 'scripts', 'rr.mjs');
const SECONDS = Number(process.env.BENCH_DATAPATH_SECONDS ?? 2);
const say = (/** @type {string} */ m) => process.stderr.write(`bench: ${m}\n`);
const sh = (/** @type {string} */ cmd, /** @type {string[]} */ args) => execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
const inNs = (/** @type {string} */ ns, /** @type {string[]} */ args) => sh('ip', ['netns', 'exec', ns, ...args]);

/** Starts a server in `ns` and waits for it to print its first line (it listens then). */
function serve(/** @type {string} */ ns, /** @type {string[]} */ args) {
  const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve) => {
    p.stdout.once('data', () => resolve(p));
    setTimeout(() => resolve(p), 1500);
  });
}

/** Gbit/s from `from` to `to` (an address in server ns `at`), `streams` TCP streams. */
async function tput(/** @type {string} */ at, /** @type {string} */ from, /** @type {string} */ to, /** @type {number} */ streams) {
  const server = /** @type {import('node:child_process').ChildProcess} */ (await serve(at, ['iperf3', '-s', '-1', '-p', '5201']));
  try {
    const out = JSON.parse(inNs(from, ['iperf3', '-c', to, '-p', '5201', '-t', String(SECONDS), '-P', String(streams), '-J']));
    return out.end.sum_received.bits_per_second / 1e9;
  } finally {
    server.kill();
  }
}

/** Request/response latency in µs (p50, p99). */
async function latency(/** @type {string} */ at, /** @type {string} */ from, /** @type {string} */ to) {
  const host = to.includes(':') ? '::' : '0.0.0.0';
  // Both ends on one CPU: on this VM a wake-up across CPUs costs tens of µs and lands by chance, which
  // made p50 swing 2x between runs of the same path; on one CPU it is steady (p99 then carries the sharing).
  const pin = ['taskset', '-c', '0', process.execPath, RR];
  const server = /** @type {import('node:child_process').ChildProcess} */ (await serve(at, [...pin, 'server', host, '5202']));
  try {
    return JSON.parse(inNs(from, [...pin, 'client', to, '5202', '3000']));
  } finally {
    server.kill();
  }
}

/**
 * Packets/s of 64-byte UDP datagrams that arrive, from `from` to `to` (in `at`), sender and receiver on one
 * CPU: what each packet costs shows here, where a 64 KB TCP segment hides it.
 */
async function pps(/** @type {string} */ at, /** @type {string} */ from, /** @type {string} */ to) {
  const pin = ['taskset', '-c', '1'];
  const server = /** @type {import('node:child_process').ChildProcess} */ (await serve(at, [...pin, 'iperf3', '-s', '-1', '-p', '5203']));
  try {
    const args = ['-c', to, '-p', '5203', '-u', '-b', '0', '-l', '64', '-t', String(SECONDS), '-J'];
    const sum = JSON.parse(inNs(from, [...pin, 'iperf3', ...args])).end.sum;
    return (sum.packets - sum.lost_packets) / sum.seconds;
  } finally {
    server.kill();
  }
}

/** @type {{ name: string, on: number, off: number }[]} */
const checks = [];

/**
 * The spoofing checks' per-packet cost on a path: packets/s with the nodes' guard tables, and with them
 * taken out (the table saved, deleted, written back), in turns.
 * @param {string} name @param {string[]} nodes @param {{ at: string, from: string, to: string }} path
 */
async function checksCost(name, nodes, path) {
  const saved = nodes.map((n) => inNs(n, ['nft', 'list', 'table', 'bridge', 'podwire-guard']));
  const off = () => nodes.forEach((n) => inNs(n, ['nft', 'delete', 'table', 'bridge', 'podwire-guard']));
  const on = () => nodes.forEach((n, i) => execFileSync('ip', ['netns', 'exec', n, 'nft', '-f', '-'], { input: saved[i] }));
  /** @type {number[]} */
  const withChecks = [];
  /** @type {number[]} */
  const without = [];
  try {
    for (let k = 0; k < ROUNDS + 2; k++) {
      for (const checked of k % 2 ? [false, true] : [true, false]) {
        if (!checked) off();
        (checked ? withChecks : without).push(await pps(path.at, path.from, path.to));
        if (!checked) on();
      }
    }
  } catch (e) {
    if (!inNs(nodes[0], ['nft', 'list', 'tables']).includes('podwire-guard')) on();
    throw e;
  }
  checks.push({ name, on: median(withChecks), off: median(without) });
}

const ROUNDS = 3;
const median = (/** @type {number[]} */ xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * A path and its limit, measured in turns (limit, path, limit, path, ...) so that the machine's noise
 * falls on both alike: the median of ROUNDS throughput runs per stream count, the best of ROUNDS latencies.
 * @typedef {{ name: string, at: string, from: string, to: string }} Spec
 * @param {Spec} limit @param {Spec} path
 */
async function pair(limit, path) {
  say(`${path.name} (beside ${limit.name})...`);
  /** @type {Record<string, number[]>} */
  const m = { l1: [], p1: [], l4: [], p4: [], lp50: [], pp50: [], lp99: [], pp99: [] };
  for (let k = 0; k < ROUNDS; k++) {
    for (const [key, s, n] of /** @type {const} */ ([
      ['l1', limit, 1],
      ['p1', path, 1],
      ['l4', limit, 4],
      ['p4', path, 4],
    ]))
      m[key]?.push(await tput(s.at, s.from, s.to, n));
    for (const [key, s] of /** @type {const} */ ([
      ['l', limit],
      ['p', path],
    ])) {
      const rr = await latency(s.at, s.from, s.to);
      m[`${key}p50`]?.push(rr.p50);
      m[`${key}p99`]?.push(rr.p99);
    }
  }
  const best = (/** @type {number[]} */ xs) => Math.min(...xs);
  return {
    name: path.name,
    limit: limit.name,
    one: median(m.p1 ?? []),
    limitOne: median(m.l1 ?? []),
    four: median(m.p4 ?? []),
    limitFour: median(m.l4 ?? []),
    p50: best(m.pp50 ?? []),
    limitP50: best(m.lp50 ?? []),
    p99: best(m.pp99 ?? []),
    limitP99: best(m.lp99 ?? []),
  };
}

/** A kept lab: its report (nodes, pods). */
function labUp(/** @type {string[]} */ args) {
  sh(BIN, ['lab-down']);
  return JSON.parse(sh(BIN, ['lab', '--keep', '--json', '--no-trace', '--nodes', '2', '--pods-per-node', '2', ...args]));
}
const podNs = (/** @type {{pod: string, node: string}} */ p) => `pwlab-n${p.node.slice(4)}-${p.pod}`;

/** @type {any[]} */
const rows = [];

/**
 * Enforces on every lab node a NetworkPolicy that isolates `server` and allows `client` (namespace bench;
 * pods labelled by their role), as the agent would from the API server.
 * @param {any} r @param {any} client @param {any} server
 */
function applyPolicy(r, client, server) {
  const pod = (/** @type {any} */ p, /** @type {string} */ role) => ({
    kind: 'Pod',
    metadata: { namespace: 'bench', name: `${p.node}-${p.pod}`, labels: { role } },
    spec: { nodeName: p.node },
    status: { podIPs: [{ ip: p.podIP }] },
  });
  const state = {
    kind: 'List',
    items: [
      { kind: 'Namespace', metadata: { name: 'bench' } },
      pod(client, 'client'),
      pod(server, 'server'),
      {
        kind: 'NetworkPolicy',
        metadata: { namespace: 'bench', name: 'server-from-client' },
        spec: {
          podSelector: { matchLabels: { role: 'server' } },
          ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }] }],
        },
      },
    ],
  };
  for (const n of r.nodes) {
    const file = `/run/podwire-lab/${n.node}/bench-policy.json`;
    writeFileSync(file, JSON.stringify(state));
    inNs(`pwlab-${n.node}`, [
      BIN,
      'netpol',
      'sync',
      '--node',
      n.node,
      '--state',
      file,
      '--subnet-file',
      `/run/podwire-lab/${n.node}/subnet.json`,
    ]);
  }
}
// The limit of one node: two namespaces and a bare veth pair, nothing else (kept while the labs run).
const [a, b] = [`pwbdpa${process.pid % 10000}`, `pwbdpb${process.pid % 10000}`];
/** What this run made: its two namespaces and the lab. Also on Ctrl-C or a kill, which skip `finally`. */
function cleanup() {
  for (const n of [a, b]) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  spawnSync(BIN, ['lab-down'], { stdio: 'ignore' });
}
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.once(sig, () => {
    cleanup();
    process.exit(130);
  });
}
try {
  for (const n of [a, b]) sh('ip', ['netns', 'add', n]);
  sh('ip', ['-n', a, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1', 'netns', b]);
  sh('ip', ['-n', a, 'addr', 'add', '10.254.0.1/30', 'dev', 'v0']);
  sh('ip', ['-n', b, 'addr', 'add', '10.254.0.2/30', 'dev', 'v1']);
  for (const [n, d] of [
    [a, 'v0'],
    [b, 'v1'],
  ])
    for (const dev of ['lo', d]) sh('ip', ['-n', n, 'link', 'set', dev, 'up']);
  const veth = { name: 'a bare veth pair', at: b, from: a, to: '10.254.0.2' };

  // host-gw twice, with podwire's rules in nftables and in iptables: what the backend costs a packet
  // (the forward accept and the masquerade are the rules every routed pod packet meets).
  for (const [mode, family, firewall] of [
    ['vxlan', 'ipv4', 'nftables'],
    ['host-gw', 'ipv4', 'nftables'],
    ['host-gw', 'ipv4', 'iptables'],
    ['vxlan', 'ipv6', 'nftables'],
  ]) {
    say(`lab --mode ${mode} --family ${family} --firewall ${firewall}`);
    const r = labUp(['--mode', mode, '--family', family, '--firewall', firewall]);
    const fw = mode === 'host-gw' ? ` (${firewall})` : '';
    try {
      const pods = r.pods.filter((/** @type {any} */ p) => /^pod\d$/.test(p.pod));
      const [p1, p2] = pods.filter((/** @type {any} */ p) => p.node === 'node1');
      const q1 = pods.find((/** @type {any} */ p) => p.node === 'node2');
      const v = family === 'ipv6' ? 'IPv6' : 'IPv4';
      const underlay = { name: `node → node on the underlay, ${v}`, at: 'pwlab-node2', from: 'pwlab-node1', to: r.nodes[1].nodeIP };
      if (mode === 'vxlan' && family === 'ipv4') {
        rows.push(await pair(veth, { name: 'pod → pod, same node (cni0)', at: podNs(p2), from: podNs(p1), to: p2.podIP }));
        await checksCost('pod → pod, same node', ['pwlab-node1'], { at: podNs(p2), from: podNs(p1), to: p2.podIP });
      }
      if (firewall === 'nftables')
        await checksCost(`pod → pod across nodes, ${mode}, ${v}`, ['pwlab-node1', 'pwlab-node2'], {
          at: podNs(q1),
          from: podNs(p1),
          to: q1.podIP,
        });
      rows.push(await pair(underlay, { name: `pod → pod across nodes, ${mode}, ${v}${fw}`, at: podNs(q1), from: podNs(p1), to: q1.podIP }));
      if (mode === 'vxlan' && family === 'ipv4') {
        // NetworkPolicy: node2's pod1 isolated by a policy whose rule allows node1's pod1; node2's pod2 by
        // none. The same client to both, interleaved: what a packet pays for being judged (the policy's
        // rule after the established/related accept, on the first packet only; set lookups on each).
        const q2 = pods.find((/** @type {any} */ p) => p.node === 'node2' && p !== q1);
        applyPolicy(r, p1, q1);
        rows.push(
          await pair(
            { name: 'pod → pod across nodes, no policy', at: podNs(q2), from: podNs(p1), to: q2.podIP },
            { name: 'pod → pod across nodes, vxlan, IPv4, a NetworkPolicy allowing it', at: podNs(q1), from: podNs(p1), to: q1.podIP },
          ),
        );
      }
      if (family === 'ipv4') {
        rows.push(
          await pair(underlay, {
            name: `pod → outside host (masquerade), ${mode}${fw}`,
            at: 'pwlab-outside',
            from: podNs(p1),
            to: '192.168.50.250',
          }),
        );
      }
    } finally {
      sh(BIN, ['lab-down']);
    }
  }
} finally {
  cleanup();
}

const f1 = (/** @type {number} */ x) => x.toFixed(1);
const f2 = (/** @type {number} */ x) => x.toFixed(2);
const lines = [
  '| path | its limit | 1 stream Gbit/s: path / limit (×) | 4 streams Gbit/s: path / limit (×) | RR p50 µs: path / limit (+) | RR p99 µs: path / limit |',
  '|---|---|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.name} | ${r.limit} | ${f1(r.one)} / ${f1(r.limitOne)} (${f2(r.one / r.limitOne)}) | ${f1(r.four)} / ${f1(r.limitFour)} ` +
      `(${f2(r.four / r.limitFour)}) | ${f1(r.p50)} / ${f1(r.limitP50)} (+${f1(r.p50 - r.limitP50)}) | ${f1(r.p99)} / ${f1(r.limitP99)} |`,
  ),
];
process.stdout.write(
  `\nthe data path (kernel ${release()}, ${SECONDS} s per iperf3 run, medians of ${ROUNDS} runs taken in turns with the limit):\n${lines.join('\n')}\n`,
);
const checkLines = [
  '| path | with the checks (packets/s) | without (packets/s) | with / without |',
  '|---|---:|---:|---:|',
  ...checks.map((c) => `| ${c.name} | ${Math.round(c.on)} | ${Math.round(c.off)} | ${f2(c.on / c.off)} |`),
];
process.stdout.write(
  `\nthe spoofing checks' cost per packet (64-byte UDP, sender and receiver on one CPU, medians of ${ROUNDS + 2} runs in turns; without: the guard table taken out):\n${checkLines.join('\n')}\n`,
);
saveResults('datapath', rows);
saveResults('spoof-checks', checks);
