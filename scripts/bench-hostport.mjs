// @ts-check
// npm run bench, hostPorts: ADD and DEL of a pod with two hostPorts (TCP and UDP), podwire with nftables,
// podwire with iptables, and the reference bridge + host-local then portmap (chained, as a conflist runs
// them), beside podwire's ADD without hostPorts — interleaved, in one run. Target: a hostPort ADD
// (nftables) costs at most 1.2x podwire's ADD without. Then how ADD grows with the node's rules: 200
// hostPort pods, the median ADD of the first 10 against the last 10, per backend.
//
// Everything runs inside one "node" network namespace made here (the script re-executes itself there, so
// no `ip netns exec` sits in the timings); pods are namespaces made here. Nothing is sent anywhere; all of
// it is removed at the end, also on failure or interruption.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveResults } from './bench-results.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'dist', 'podwire');
const ROUNDS = Number(process.env.BENCH_HOSTPORT_ROUNDS ?? 40);
const SCALE = Number(process.env.BENCH_HOSTPORT_PODS ?? 200);
const NODE = 'pwbench-hp-node';
const POD = 'pwbench-hp-pod';
const BUDGET = 1.2;

const median = (/** @type {number[]} */ xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const sh = (/** @type {string} */ cmd, /** @type {string[]} */ args) => execFileSync(cmd, args, { encoding: 'utf8' });

/** @param {string} bin @param {string} command @param {string} id @param {number} pod @param {object} conf @returns {Promise<{ms: number, out: string}>} */
function cni(bin, command, id, pod, conf) {
  const env = {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: `/run/netns/${POD}${pod}`,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
  };
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = execFile(bin, [], { env }, (err, stdout) => {
      const ms = performance.now() - t0;
      if (err) reject(new Error(`${bin} ${command} ${id}: ${stdout || err.message}`));
      else resolve({ ms, out: stdout });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(JSON.stringify(conf));
  });
}

const MAPPINGS = (/** @type {number} */ base) => [
  { hostPort: base, containerPort: 80, protocol: 'tcp' },
  { hostPort: base + 1, containerPort: 53, protocol: 'udp' },
];

/** The inner part, run inside the node namespace. @param {string} dir */
async function inner(dir) {
  const ipam = (/** @type {string} */ sub, /** @type {string} */ type = 'podwire-ipam') => ({
    type,
    subnet: sub,
    dataDir: join(dir, `ipam-${sub.split('.')[2]}`),
  });
  const podwire = (/** @type {string} */ fw, /** @type {string} */ sub, /** @type {object[]} */ pm) => ({
    cniVersion: '1.0.0',
    name: `bench-${fw}`,
    type: 'podwire',
    bridge: `br-${fw.slice(0, 3)}`,
    firewallBackend: fw,
    capabilities: { portMappings: true },
    runtimeConfig: { portMappings: pm },
    logFile: join(dir, 'podwire.log'),
    ipam: ipam(sub),
  });
  const refBridge = {
    cniVersion: '1.0.0',
    name: 'bench-ref',
    type: 'bridge',
    bridge: 'br-ref',
    isGateway: true,
    ipam: { type: 'host-local', subnet: '10.250.4.0/24', dataDir: join(dir, 'host-local') },
  };
  const refPortmap = (/** @type {object[]} */ pm, /** @type {unknown} */ prevResult) => ({
    cniVersion: '1.0.0',
    name: 'bench-ref',
    type: 'portmap',
    capabilities: { portMappings: true },
    runtimeConfig: { portMappings: pm },
    prevResult,
  });
  /** @type {Record<string, (id: string, pod: number, pm: object[]) => Promise<{add: number, del: number}>>} */
  const cases = {
    'podwire, no hostPorts': async (id, pod) => {
      const c = podwire('nftables', '10.250.1.0/24', []);
      const a = await cni(BIN, 'ADD', id, pod, c);
      const d = await cni(BIN, 'DEL', id, pod, { ...c, prevResult: JSON.parse(a.out) });
      return { add: a.ms, del: d.ms };
    },
    'podwire, nftables': async (id, pod, pm) => {
      const c = podwire('nftables', '10.250.2.0/24', pm);
      const a = await cni(BIN, 'ADD', id, pod, c);
      const d = await cni(BIN, 'DEL', id, pod, { ...c, prevResult: JSON.parse(a.out) });
      return { add: a.ms, del: d.ms };
    },
    'podwire, iptables': async (id, pod, pm) => {
      const c = podwire('iptables', '10.250.3.0/24', pm);
      const a = await cni(BIN, 'ADD', id, pod, c);
      const d = await cni(BIN, 'DEL', id, pod, { ...c, prevResult: JSON.parse(a.out) });
      return { add: a.ms, del: d.ms };
    },
    'reference bridge + portmap': async (id, pod, pm) => {
      const a1 = await cni('/usr/lib/cni/bridge', 'ADD', id, pod, refBridge);
      const res = JSON.parse(a1.out);
      const a2 = await cni('/usr/lib/cni/portmap', 'ADD', id, pod, refPortmap(pm, res));
      const d2 = await cni('/usr/lib/cni/portmap', 'DEL', id, pod, refPortmap(pm, res));
      const d1 = await cni('/usr/lib/cni/bridge', 'DEL', id, pod, { ...refBridge, prevResult: res });
      return { add: a1.ms + a2.ms, del: d1.ms + d2.ms };
    },
  };
  /** @type {Record<string, {add: number[], del: number[]}>} */
  const got = Object.fromEntries(Object.keys(cases).map((k) => [k, { add: [], del: [] }]));
  // Warm-up (bridges, shared chains and the table exist from here on, as on any node with a pod).
  for (const [k, f] of Object.entries(cases)) await f(`warm-${k.length}`, 0, MAPPINGS(9000));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, f] of Object.entries(cases)) {
      const x = await f(`r${r}`, 0, MAPPINGS(9000));
      got[k].add.push(x.add);
      got[k].del.push(x.del);
    }
  }
  // Growth: SCALE pods with hostPorts each, kept; the first 10 ADDs against the last 10.
  /** @type {Record<string, {first: number, last: number, rules: number}>} */
  const growth = {};
  for (const fw of ['nftables', 'iptables']) {
    const ms = [];
    const sub = fw === 'nftables' ? '10.250.5.0/24' : '10.250.6.0/24';
    for (let i = 1; i <= SCALE; i++) {
      const a = await cni(BIN, 'ADD', `g${i}`, i, podwire(fw, sub, MAPPINGS(10000 + 2 * i)));
      ms.push(a.ms);
    }
    const rules =
      fw === 'nftables'
        ? sh('nft', ['list', 'table', 'inet', 'podwire'])
            .split('\n')
            .filter((l) => /^\s+(dnat|ct|ip|fib|counter|meta)/.test(l)).length
        : sh('iptables-save', ['-t', 'nat'])
            .split('\n')
            .filter((l) => l.startsWith('-A ')).length;
    growth[fw] = { first: median(ms.slice(0, 10)), last: median(ms.slice(-10)), rules };
    for (let i = 1; i <= SCALE; i++) await cni(BIN, 'DEL', `g${i}`, i, { ...podwire(fw, sub, MAPPINGS(10000 + 2 * i)) });
  }
  const out = {
    rounds: ROUNDS,
    medians: Object.fromEntries(Object.entries(got).map(([k, v]) => [k, { add: median(v.add), del: median(v.del) }])),
    growth,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

async function outer() {
  const dir = mkdtempSync(join(tmpdir(), 'pwbench-hp-'));
  const down = () => {
    try {
      execFileSync('ip', ['netns', 'del', NODE], { stdio: 'ignore' });
    } catch {
      // not made
    }
    for (let i = 0; i <= SCALE; i++) {
      try {
        execFileSync('ip', ['netns', 'del', `${POD}${i}`], { stdio: 'ignore' });
      } catch {
        // not made
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM'])) process.once(sig, () => (down(), process.exit(130)));
  try {
    sh('ip', ['netns', 'add', NODE]);
    sh('ip', ['-n', NODE, 'link', 'set', 'lo', 'up']);
    for (let i = 0; i <= SCALE; i++) sh('ip', ['netns', 'add', `${POD}${i}`]);
    const r = execFileSync('ip', ['netns', 'exec', NODE, process.execPath, fileURLToPath(import.meta.url), '--inner', dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const res = JSON.parse(r);
    const m = res.medians;
    const base = m['podwire, no hostPorts'];
    const say = (/** @type {string} */ s) => process.stdout.write(s + '\n');
    say(`hostPorts: ADD and DEL of a pod with two hostPorts (TCP, UDP), median of ${res.rounds}, interleaved`);
    for (const [k, v] of Object.entries(m)) {
      say(
        `  ${k.padEnd(28)} ADD ${v.add.toFixed(1).padStart(6)} ms (${(v.add / base.add).toFixed(2)}x)   DEL ${v.del.toFixed(1).padStart(6)} ms (${(v.del / base.del).toFixed(2)}x)`,
      );
    }
    const ratio = m['podwire, nftables'].add / base.add;
    say(
      `  target: hostPort ADD (nftables) <= ${BUDGET}x podwire's ADD without hostPorts: ${ratio.toFixed(2)}x ${ratio <= BUDGET ? 'met' : 'NOT met'}`,
    );
    for (const [fw, g] of Object.entries(res.growth)) {
      say(
        `  ${SCALE} hostPort pods, ${fw}: ADD ${g.first.toFixed(1)} ms (first 10) -> ${g.last.toFixed(1)} ms (last 10), ${(g.last / g.first).toFixed(2)}x; nat rules on the node: ${g.rules}`,
      );
    }
    saveResults('hostport', res);
  } finally {
    down();
  }
}

if (process.argv[2] === '--inner') await inner(process.argv[3] ?? tmpdir());
else await outer();
