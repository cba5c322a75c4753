// @ts-check
// npm run bench: the per-pod path of podwire beside the reference bridge + host-local plugins (Debian
// containernetworking-plugins), measured in one run on one machine, interleaved so that the machine's
// drift falls on both alike:
// - serial ADD and DEL: median, p90, p99 of the wall time, and CPU ms per call (user + sys of the
//   plugin and every process it started, from the kernel's accounting of waited-for children);
// - bursts: 8, 30 and 100 pods started at once, and 48 pods by 8 workers (ADD, then DEL): pods/s;
// - the floor: VERSION of both, and of a do-nothing binary built exactly like dist/podwire;
// - dual-stack: podwire's ADD and DEL with an address of each family, beside its IPv4-only ADD and DEL
//   (serial, interleaved with the others): the budget is 1.2x;
// - the spoofing checks' cost: podwire's ADD and DEL beside the same with "spoofChecks": false (serial,
//   interleaved with the others);
// - podwire's cost budget: PODWIRE_PROFILE=1 records each step of ADD and DEL (src/profile.ts); the
//   medians, and the exit (wall time after podwire's last recorded step), make the README's table.
//
// Each plugin runs inside its own "node" network namespace, driven by a runner process started inside it
// (so no `ip netns exec` sits in the timings); the runners take their orders from here, in turn. Nothing is
// sent anywhere; every namespace and directory made is removed at the end, also on failure.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SERIAL = Number(process.env.BENCH_SERIAL ?? 200);
const BLOCK = 20;
const BURSTS = [8, 30, 100];
const WORKER_BURST = { pods: 48, workers: 8 };
const REPEATS = 3;
const PODS = Math.max(BLOCK, ...BURSTS, WORKER_BURST.pods);
const FLOOR = join(root, '.bench', 'floor');

/** @typedef {'podwire' | 'reference' | 'dual' | 'unchecked'} Which */
/** @typedef {'podwire' | 'reference'} Pair  what the bursts and VERSION compare */
/** @type {Record<Which, { bin: string, type: string, ipam: string, dual?: boolean, unchecked?: boolean }>} */
const PLUGINS = {
  podwire: { bin: join(root, 'dist', 'podwire'), type: 'podwire', ipam: 'podwire-ipam' },
  reference: { bin: '/usr/lib/cni/bridge', type: 'bridge', ipam: 'host-local' },
  dual: { bin: join(root, 'dist', 'podwire'), type: 'podwire', ipam: 'podwire-ipam', dual: true },
  unchecked: { bin: join(root, 'dist', 'podwire'), type: 'podwire', ipam: 'podwire-ipam', unchecked: true },
};
/** Dual-stack ADD and DEL against IPv4-only: at most this much slower (issue 16's budget). */
const DUAL_BUDGET = 1.2;

/** @param {number[]} xs @param {number} p */
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const median = (/** @type {number[]} */ xs) => pct(xs, 50);

// ---------------------------------------------------------------------------------------------------
// The runner, inside a node namespace: one JSON order per line on stdin, one JSON answer per line.

/** CPU ms of this process's waited-for children so far (clock ticks of /proc/self/stat, 100 per second). */
function childCpuMs() {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[13]) + Number(f[14])) * 10;
}

/** The wall clock, ms since 1970 with sub-ms resolution: the profiled plugin stamps its last step with it. */
const epoch = () => performance.timeOrigin + performance.now();

/**
 * @param {string} bin @param {string} command @param {string} id @param {string} netns @param {string} stdin
 * @param {Record<string, string>} [extra] @param {{ started?: number, exited?: number, stdout?: string }} [stamps]
 * @returns {Promise<number>} wall ms
 */
function cni(bin, command, id, netns, stdin, extra = {}, stamps = {}) {
  const env = {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: netns,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
    ...extra,
  };
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    stamps.started = epoch();
    const child = execFile(bin, [], { env }, (err, stdout) => {
      const ms = performance.now() - t0;
      stamps.stdout = stdout;
      if (err) reject(new Error(`${command} ${id}: ${stdout || err.message}`));
      else resolve(ms);
    });
    child.on('exit', () => (stamps.exited = epoch()));
    // A plugin that needs no config (VERSION, the floor) may exit before reading it, as Go's os/exec
    // (libcni, so containerd, CRI-O and podman) tolerates: so does this runner.
    child.stdin?.on('error', () => {});
    child.stdin?.end(stdin);
  });
}

/** @param {Which} which @param {string} podPrefix @param {string} dir */
async function runner(which, podPrefix, dir) {
  const p = PLUGINS[which];
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'benchnet',
    type: p.type,
    bridge: 'cni0',
    isGateway: true,
    ...(p.unchecked ? { spoofChecks: false } : {}),
    logFile: join(dir, 'podwire.log'),
    ipam: p.dual
      ? { type: p.ipam, ranges: [[{ subnet: '10.244.0.0/16' }], [{ subnet: 'fd00:10:244::/48' }]], dataDir: join(dir, 'ipam') }
      : { type: p.ipam, subnet: '10.244.0.0/16', dataDir: join(dir, 'ipam') },
  });
  const ns = (/** @type {number} */ i) => `/run/netns/${podPrefix}${i}`;
  // As containerd, CRI-O and podman do (FIELD-NOTES): DEL carries the ADD's result as prevResult.
  /** @type {Map<string, unknown>} */
  const results = new Map();
  /**
   * @param {string} verb @param {string} id @param {number} i @param {Record<string, string>} [extra]
   * @param {{ started?: number, exited?: number, stdout?: string }} [stamps]
   */
  const call = async (verb, id, i, extra = {}, stamps = {}) => {
    const prev = verb === 'DEL' ? results.get(id) : undefined;
    const stdin = prev ? JSON.stringify({ ...JSON.parse(conf), prevResult: prev }) : conf;
    const ms = await cni(p.bin, verb, id, ns(i), stdin, extra, stamps);
    if (verb === 'ADD') results.set(id, JSON.parse(stamps.stdout ?? '{}'));
    else results.delete(id);
    return ms;
  };
  let seq = 0;
  /** @param {string} verb @param {number[]} pods @param {Record<string, string>} [extra] */
  const serial = async (verb, pods, extra) => {
    const cpu0 = childCpuMs();
    const ms = [];
    for (const i of pods) ms.push(await call(verb, `c${i}`, i, extra));
    return { ms, cpuMs: (childCpuMs() - cpu0) / pods.length };
  };
  /** @param {string} verb @param {number} pods @param {number} workers */
  const burst = async (verb, pods, workers) => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (next < pods) {
          const i = next++;
          await call(verb, `c${i}`, i);
        }
      }),
    );
    return { podsPerS: pods / ((performance.now() - t0) / 1000) };
  };
  // Warm-up: page cache, and the bridge exists from here on (as on any node with a pod).
  await call('ADD', 'warm', 0);
  await call('DEL', 'warm', 0);
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const o = JSON.parse(line);
    const pods = Array.from({ length: o.pods ?? 0 }, (_, i) => i);
    /** @type {unknown} */
    let answer;
    if (o.op === 'serial') answer = await serial(o.verb, pods);
    else if (o.op === 'burst') answer = await burst(o.verb, o.pods, o.workers);
    else if (o.op === 'version') {
      const bin = o.floor ? FLOOR : p.bin;
      const cpu0 = childCpuMs();
      const ms = [];
      for (const _ of pods) ms.push(await cni(bin, 'VERSION', '', '', conf));
      answer = { ms, cpuMs: (childCpuMs() - cpu0) / pods.length };
    } else if (o.op === 'profile') {
      // Each call's wall time beside its profile (the last log line of that verb).
      const rows = [];
      for (const i of pods) {
        for (const verb of ['ADD', 'DEL']) {
          /** @type {{ started?: number, exited?: number }} */
          const stamps = {};
          const wall = await call(verb, `prof${seq}`, i, { PODWIRE_PROFILE: '1' }, stamps);
          const last = readFileSync(join(dir, 'podwire.log'), 'utf8').trim().split('\n').pop() ?? '{}';
          rows.push({ verb, wall, ...stamps, profile: JSON.parse(last).profile });
        }
        seq++;
      }
      answer = rows;
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
}

// ---------------------------------------------------------------------------------------------------
// The conductor, in the host's namespace.

class Runner {
  /** @param {Which} which @param {string} node @param {string} podPrefix @param {string} dir */
  constructor(which, node, podPrefix, dir) {
    this.child = spawn('ip', ['netns', 'exec', node, process.execPath, fileURLToPath(import.meta.url), '--runner', which, podPrefix, dir], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.lines = createInterface({ input: /** @type {import('node:stream').Readable} */ (this.child.stdout) })[Symbol.asyncIterator]();
  }

  /** @param {Record<string, unknown>} order @returns {Promise<any>} */
  async ask(order) {
    this.child.stdin?.write(JSON.stringify(order) + '\n');
    const { value, done } = await this.lines.next();
    if (done) throw new Error('bench runner ended early');
    return JSON.parse(value);
  }

  end() {
    this.child.stdin?.end();
  }
}

/** Builds the do-nothing binary exactly like dist/podwire (scripts/build.mjs compileBun). */
async function buildFloor() {
  const { compileBun } = await import('./build.mjs');
  mkdirSync(dirname(FLOOR), { recursive: true });
  const entry = join(dirname(FLOOR), 'floor.js');
  writeFileSync(entry, 'process.exitCode = 0;\n');
  compileBun(entry, FLOOR);
}

/** @param {Record<Which, Runner>} r @param {Record<string, unknown>} order @param {number} times */
async function alternate(r, order, times) {
  /** @type {Record<Pair, any[]>} */
  const out = { podwire: [], reference: [] };
  for (let k = 0; k < times; k++) {
    for (const which of /** @type {Pair[]} */ (k % 2 ? ['reference', 'podwire'] : ['podwire', 'reference']))
      out[which].push(await r[which].ask(order));
  }
  return out;
}

async function conduct() {
  await buildFloor();
  const tag = `pwb${process.pid % 100000}`;
  /** @type {string[]} */
  const made = [];
  /** @type {string[]} */
  const dirs = [];
  const netns = (/** @type {string} */ name) => {
    execFileSync('ip', ['netns', 'add', name]);
    made.push(name);
  };
  /** @type {Partial<Record<Which, Runner>>} */
  const runners = {};
  try {
    for (const which of /** @type {Which[]} */ (['podwire', 'reference', 'dual', 'unchecked'])) {
      const node = `${tag}${which[0]}n`;
      const podPrefix = `${tag}${which[0]}p`;
      netns(node);
      execFileSync('ip', ['-n', node, 'link', 'set', 'lo', 'up']);
      for (let i = 0; i < PODS; i++) netns(`${podPrefix}${i}`);
      const dir = mkdtempSync(join(tmpdir(), `podwire-bench-${which}-`));
      dirs.push(dir);
      runners[which] = new Runner(which, node, podPrefix, dir);
    }
    const r = /** @type {Record<Which, Runner>} */ (runners);
    const say = (/** @type {string} */ m) => process.stderr.write(`bench: ${m}\n`);

    say(
      `serial ADD and DEL, ${SERIAL} of each, in blocks of ${BLOCK}, podwire, the reference, dual-stack podwire and podwire without spoofing checks in turn...`,
    );
    const blank = () => ({
      add: /** @type {number[]} */ ([]),
      del: /** @type {number[]} */ ([]),
      addCpu: /** @type {number[]} */ ([]),
      delCpu: /** @type {number[]} */ ([]),
    });
    /** @type {Record<Which, { add: number[], del: number[], addCpu: number[], delCpu: number[] }>} */
    const serial = { podwire: blank(), reference: blank(), dual: blank(), unchecked: blank() };
    /** @type {Which[][]} */
    const orders = [
      ['podwire', 'reference', 'dual', 'unchecked'],
      ['unchecked', 'podwire', 'reference', 'dual'],
      ['dual', 'unchecked', 'podwire', 'reference'],
      ['reference', 'dual', 'unchecked', 'podwire'],
    ];
    for (let b = 0; b < SERIAL / BLOCK; b++) {
      for (const which of orders[b % orders.length]) {
        const add = await r[which].ask({ op: 'serial', verb: 'ADD', pods: BLOCK });
        const del = await r[which].ask({ op: 'serial', verb: 'DEL', pods: BLOCK });
        serial[which].add.push(...add.ms);
        serial[which].del.push(...del.ms);
        serial[which].addCpu.push(add.cpuMs);
        serial[which].delCpu.push(del.cpuMs);
      }
    }

    say(
      `bursts of ${BURSTS.join(', ')} pods at once and ${WORKER_BURST.pods} by ${WORKER_BURST.workers} workers, ${REPEATS} times each...`,
    );
    /** @type {[string, Record<Pair, number>, Record<Pair, number>][]} */
    const bursts = [];
    for (const [pods, workers] of [...BURSTS.map((n) => [n, n]), [WORKER_BURST.pods, WORKER_BURST.workers]]) {
      /** @type {Record<Pair, number[]>} */
      const add = { podwire: [], reference: [] };
      /** @type {Record<Pair, number[]>} */
      const del = { podwire: [], reference: [] };
      for (let k = 0; k < REPEATS; k++) {
        for (const which of /** @type {Pair[]} */ (k % 2 ? ['reference', 'podwire'] : ['podwire', 'reference'])) {
          add[which].push((await r[which].ask({ op: 'burst', verb: 'ADD', pods, workers })).podsPerS);
          del[which].push((await r[which].ask({ op: 'burst', verb: 'DEL', pods, workers })).podsPerS);
        }
      }
      const label = workers === pods ? `${pods} pods at once` : `${pods} pods by ${workers} workers`;
      bursts.push([
        label,
        { podwire: median(add.podwire), reference: median(add.reference) },
        { podwire: median(del.podwire), reference: median(del.reference) },
      ]);
    }

    say('VERSION, and the do-nothing floor...');
    const version = await alternate(r, { op: 'version', pods: 50 }, 4);
    const floor = await alternate(r, { op: 'version', pods: 50, floor: true }, 2);
    const versionMs = (/** @type {Pair} */ w) => median(version[w].flatMap((a) => a.ms));
    const versionCpu = (/** @type {Pair} */ w) => median(version[w].map((a) => a.cpuMs));
    const floorRuns = floor.podwire.concat(floor.reference);
    const floorMs = median(floorRuns.flatMap((a) => a.ms));
    const floorCpu = median(floorRuns.map((a) => a.cpuMs));

    say("podwire's cost budget (PODWIRE_PROFILE=1)...");
    const profiled = await r.podwire.ask({ op: 'profile', pods: 40 });

    // ---------------------------------------------------------------------------------------------
    const machine =
      `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, kernel ` +
      `${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, ${new Date().toISOString().slice(0, 10)}`;
    const pw = serial.podwire;
    const ref = serial.reference;
    /** @type {[string, number, number][]} */
    const rows = [
      ['ADD median (ms)', median(pw.add), median(ref.add)],
      ['ADD p90 (ms)', pct(pw.add, 90), pct(ref.add, 90)],
      ['ADD p99 (ms)', pct(pw.add, 99), pct(ref.add, 99)],
      ['DEL median (ms)', median(pw.del), median(ref.del)],
      ['DEL p90 (ms)', pct(pw.del, 90), pct(ref.del, 90)],
      ['DEL p99 (ms)', pct(pw.del, 99), pct(ref.del, 99)],
      ['CPU per ADD (ms, plugin + its children)', median(pw.addCpu), median(ref.addCpu)],
      ['CPU per DEL (ms)', median(pw.delCpu), median(ref.delCpu)],
      ...bursts.flatMap(
        ([label, add, del]) =>
          /** @type {[string, number, number][]} */ ([
            [`ADD pods/s, ${label}`, add.podwire, add.reference],
            [`DEL pods/s, ${label}`, del.podwire, del.reference],
          ]),
      ),
      ['VERSION median (ms)', versionMs('podwire'), versionMs('reference')],
      ['VERSION CPU (ms)', versionCpu('podwire'), versionCpu('reference')],
    ];
    const f1 = (/** @type {number} */ x) => x.toFixed(1);
    const table = [
      `machine: ${machine}`,
      '',
      '| figure | podwire | reference bridge + host-local | podwire / reference |',
      '|---|---:|---:|---:|',
      ...rows.map(([name, a, b]) => `| ${name} | ${f1(a)} | ${f1(b)} | ${(a / b).toFixed(2)} |`),
      '',
      `the floor: a do-nothing binary built exactly like dist/podwire: ${floorMs.toFixed(1)} ms (CPU ${floorCpu.toFixed(1)} ms); ` +
        `podwire's VERSION ${(versionMs('podwire') - floorMs).toFixed(2)} ms above it`,
      '',
      dualTable(serial.podwire, serial.dual),
      '',
      checksTable(serial.podwire, serial.unchecked),
      '',
      budgetTable(profiled),
    ].join('\n');
    process.stdout.write(table + '\n');
    mkdirSync(join(root, '.bench'), { recursive: true });
    writeFileSync(
      join(root, '.bench', 'results.json'),
      JSON.stringify({ machine, rows, floor: { ms: floorMs, cpuMs: floorCpu }, serial, bursts, profiled }, null, 1),
    );
  } finally {
    for (const runner of Object.values(runners)) runner?.end();
    for (const n of made.reverse()) execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** @typedef {{ add: number[], del: number[], addCpu: number[], delCpu: number[] }} Serial */

/**
 * Two podwire variants from the same interleaved serial runs, the second against the first: their ADD
 * and DEL, and the CPU they take. `head`: the table's header cells (title, first, second, ratio).
 * @param {Serial} a @param {Serial} b @param {[string, string, string, string]} head
 * @returns {{ text: string, rows: [string, number, number][] }}
 */
function variantTable(a, b, head) {
  /** @type {[string, number, number][]} */
  const rows = [
    ['ADD median (ms)', median(a.add), median(b.add)],
    ['ADD p90 (ms)', pct(a.add, 90), pct(b.add, 90)],
    ['DEL median (ms)', median(a.del), median(b.del)],
    ['CPU per ADD (ms)', median(a.addCpu), median(b.addCpu)],
    ['CPU per DEL (ms)', median(a.delCpu), median(b.delCpu)],
  ];
  const text = [
    `| ${head.join(' | ')} |`,
    '|---|---:|---:|---:|',
    ...rows.map(([name, x, y]) => `| ${name} | ${x.toFixed(1)} | ${y.toFixed(1)} | ${(y / x).toFixed(2)} |`),
  ].join('\n');
  return { text, rows };
}

/** Dual-stack podwire beside IPv4-only podwire, against the budget. @param {Serial} v4 @param {Serial} dual */
function dualTable(v4, dual) {
  const t = variantTable(v4, dual, ['dual-stack (an address of each family)', 'podwire IPv4', 'podwire dual-stack', 'dual / IPv4']);
  const within = t.rows.filter(([n]) => n.includes('median')).every(([, a, b]) => b / a <= DUAL_BUDGET);
  return `${t.text}\n\ndual-stack ADD and DEL medians within ${DUAL_BUDGET}x of IPv4's: ${within ? 'yes' : 'NO'}`;
}

/** podwire with "spoofChecks": false beside podwire: what binding each pod to its port costs. @param {Serial} on @param {Serial} off */
const checksTable = (on, off) =>
  variantTable(off, on, ['spoofing checks', 'podwire, spoofChecks: false', 'podwire (checks on)', 'on / off']).text;

/** @typedef {{ step: string, at: number, ms: number, cpu?: number, epoch?: number }} Span */
/** @typedef {{ verb: string, wall: number, started?: number, exited?: number, profile: Span[] }} ProfiledCall */

/**
 * podwire's cost budget from profiled calls: per step the median start, wall and CPU. Its clock starts
 * when Bun's runtime is up; before that, exec and the runtime's own start ("exec"), and after its last
 * recorded step the log line, the process's end and the caller seeing it ("exit"), both from the wall
 * clock stamps of caller and plugin.
 * @param {ProfiledCall[]} calls
 */
function budgetTable(calls) {
  const out = ["podwire's cost budget (medians of 40 profiled calls; steps that overlap are marked with their start):", ''];
  for (const verb of ['ADD', 'DEL']) {
    const mine = calls.filter((c) => c.verb === verb && c.profile);
    /** @type {Map<string, { at: number[], ms: number[], cpu: number[] }>} */
    const steps = new Map();
    for (const c of mine) {
      for (const s of c.profile) {
        const e = steps.get(s.step) ?? { at: [], ms: [], cpu: [] };
        e.at.push(s.at);
        e.ms.push(s.ms);
        if (s.cpu !== undefined) e.cpu.push(s.cpu);
        steps.set(s.step, e);
      }
    }
    const endOf = (/** @type {typeof mine[number]} */ c) => c.profile.find((s) => s.step === 'end');
    const exec = median(mine.map((c) => (endOf(c)?.epoch ?? NaN) - (endOf(c)?.at ?? NaN) - (c.started ?? NaN)));
    const exit = median(mine.map((c) => (c.exited ?? NaN) - (endOf(c)?.epoch ?? NaN)));
    const end = median(mine.map((c) => endOf(c)?.at ?? NaN));
    out.push(`| ${verb} step | starts at (ms) | wall (ms) | CPU (ms) |`, '|---|---:|---:|---:|');
    out.push(`| exec, until Bun's clock starts | -${exec.toFixed(2)} | ${exec.toFixed(2)} | - |`);
    for (const [name, e] of steps) {
      if (name === 'end') continue;
      out.push(`| ${name} | ${median(e.at).toFixed(2)} | ${median(e.ms).toFixed(2)} | ${e.cpu.length ? median(e.cpu).toFixed(2) : '-'} |`);
    }
    out.push(`| log line, exit, the caller seeing it | ${end.toFixed(2)} | ${exit.toFixed(2)} | - |`);
    out.push(`| **total, as the caller measured it** | | **${median(mine.map((c) => c.wall)).toFixed(2)}** | |`, '');
  }
  return out.join('\n');
}

if (process.argv[2] === '--runner') await runner(/** @type {Which} */ (process.argv[3]), process.argv[4] ?? '', process.argv[5] ?? '');
else await conduct();
