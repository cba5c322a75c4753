// npm run bench: ADD/DEL latency and parallel throughput of podwire against the reference bridge +
// host-local plugins (Debian containernetworking-plugins), measured in the same run on the same machine.
//
// Each plugin runs inside its own "node" network namespace with its own pod namespaces; this script
// re-executes itself inside the node namespace (--inner) so no `ip netns exec` sits in the timings.
// Nothing is sent anywhere; everything made is removed at the end, also on failure.
import { execFile, execFileSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SERIAL = Number(process.env.BENCH_SERIAL ?? 60);
const PARALLEL_PODS = Number(process.env.BENCH_PARALLEL ?? 160);
const WORKERS = 8;

const PLUGINS = {
  podwire: { bin: join(root, 'dist', 'podwire'), type: 'podwire', ipam: 'podwire-ipam' },
  reference: { bin: '/usr/lib/cni/bridge', type: 'bridge', ipam: 'host-local' },
};

function conf(which, dir) {
  const p = PLUGINS[which];
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'benchnet',
    type: p.type,
    bridge: 'cni0',
    isGateway: true,
    logFile: join(dir, 'podwire.log'),
    ipam: { type: p.ipam, subnet: '10.244.0.0/16', dataDir: join(dir, 'ipam') },
  });
}

function cni(bin, command, id, netns, stdin) {
  const env = { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = execFile(bin, [], { env }, (err, stdout) => {
      const ms = performance.now() - t0;
      if (err) reject(new Error(`${command} ${id}: ${stdout || err.message}`));
      else resolve(ms);
    });
    child.stdin.end(stdin);
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** Inside the node namespace: serial ADD/DEL, then WORKERS in parallel. Prints JSON. */
async function inner(which, podPrefix, dir) {
  const { bin } = PLUGINS[which];
  const stdin = conf(which, dir);
  const ns = (i) => `/run/netns/${podPrefix}${i}`;
  // warm-up: page cache, bridge creation
  await cni(bin, 'ADD', 'warm', ns(0), stdin);
  await cni(bin, 'DEL', 'warm', ns(0), stdin);
  const add = [];
  const del = [];
  for (let i = 0; i < SERIAL; i++) add.push(await cni(bin, 'ADD', `s${i}`, ns(i), stdin));
  for (let i = 0; i < SERIAL; i++) del.push(await cni(bin, 'DEL', `s${i}`, ns(i), stdin));

  const run = async (command) => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (next < PARALLEL_PODS) {
          const i = next++;
          await cni(bin, command, `p${i}`, ns(i), stdin);
        }
      }),
    );
    return PARALLEL_PODS / ((performance.now() - t0) / 1000);
  };
  const addRate = await run('ADD');
  const delRate = await run('DEL');
  process.stdout.write(JSON.stringify({ add, del, addRate, delRate }));
}

function outer() {
  const tag = `pwb${process.pid % 100000}`;
  const made = [];
  const dirs = [];
  const netns = (name) => {
    execFileSync('ip', ['netns', 'add', name]);
    made.push(name);
  };
  const results = {};
  try {
    const pods = Math.max(SERIAL, PARALLEL_PODS);
    for (const which of Object.keys(PLUGINS)) {
      const node = `${tag}${which[0]}n`;
      const podPrefix = `${tag}${which[0]}p`;
      netns(node);
      execFileSync('ip', ['-n', node, 'link', 'set', 'lo', 'up']);
      for (let i = 0; i < pods; i++) netns(`${podPrefix}${i}`);
      const dir = mkdtempSync(join(tmpdir(), `podwire-bench-${which}-`));
      dirs.push(dir);
      process.stderr.write(`bench: ${which}: ${SERIAL} serial ADD+DEL, ${PARALLEL_PODS} pods with ${WORKERS} in parallel...\n`);
      const out = execFileSync('ip', ['netns', 'exec', node, process.execPath, fileURLToPath(import.meta.url), '--inner', which, podPrefix, dir], {
        encoding: 'utf8',
        maxBuffer: 16 << 20,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      results[which] = JSON.parse(out);
    }
  } finally {
    for (const n of made.reverse()) execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }

  const { podwire: pw, reference: ref } = results;
  const rows = [
    ['ADD median (ms)', pct(pw.add, 50), pct(ref.add, 50), 'lower'],
    ['ADD p90 (ms)', pct(pw.add, 90), pct(ref.add, 90), 'lower'],
    ['DEL median (ms)', pct(pw.del, 50), pct(ref.del, 50), 'lower'],
    ['DEL p90 (ms)', pct(pw.del, 90), pct(ref.del, 90), 'lower'],
    [`ADD pods/s, ${WORKERS} parallel`, pw.addRate, ref.addRate, 'higher'],
    [`DEL pods/s, ${WORKERS} parallel`, pw.delRate, ref.delRate, 'higher'],
  ];
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, ${new Date().toISOString().slice(0, 10)}`;
  const table = [
    `machine: ${machine}`,
    '',
    '| figure | podwire | reference bridge+host-local | podwire / reference |',
    '|---|---:|---:|---:|',
    ...rows.map(([name, a, b]) => `| ${name} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(a / b).toFixed(2)} |`),
  ].join('\n');
  process.stdout.write(table + '\n');
  mkdirSync(join(root, '.bench'), { recursive: true });
  writeFileSync(join(root, '.bench', 'results.json'), JSON.stringify({ machine, rows, raw: results }, null, 1));
}

if (process.argv[2] === '--inner') await inner(process.argv[3], process.argv[4], process.argv[5]);
else outer();
