// NetworkPolicy in the lab, as upstream's e2e proves it (test/e2e/network/netpol): namespaces x, y, z
// with pods a, b, c in each, spread over the nodes, each serving TCP and UDP on ports 80 and 81 (named
// serve-80-tcp, serve-81-udp, ... as upstream names them). Policies are compiled and enforced on every
// node (`podwire netpol sync`, what the agent does from the API server), then every pod probes every pod
// — the full 9×9 reachability table per port and protocol — from long-lived probers, one per pod, so a
// table costs one round of parallel connects, not 81 processes.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { run } from '../runtime/run.js';
import type { Lab, LabPod } from '../lab/lab.js';

export const POLICY_NAMESPACES = ['x', 'y', 'z'] as const;
export const POLICY_PODS = ['a', 'b', 'c'] as const;
export type Proto = 'tcp' | 'udp';
/** "x/a" */
export type PodKey = string;
export const POD_KEYS: PodKey[] = POLICY_NAMESPACES.flatMap((n) => POLICY_PODS.map((p) => `${n}/${p}`));
export const PROBE_TIMEOUT_MS = 500;

const SERVER = `
const net = require('net'), dgram = require('dgram');
for (const port of [80, 81]) {
  // A prober closes as soon as it is connected (a reset): that is no reason for the server to stop.
  net.createServer((s) => { s.on('error', () => {}); s.end('ok'); }).listen(port, '::');
  const u = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  u.on('error', () => {});
  u.on('message', (m, r) => u.send('ok', r.port, r.address));
  u.bind(port, '::');
}
process.stdout.write('ready\\n');
`;

const PROBER = `
const net = require('net'), dgram = require('dgram'), rl = require('readline').createInterface({ input: process.stdin });
const T = ${PROBE_TIMEOUT_MS};
const tcp = (to, port) => new Promise((res) => {
  const s = net.connect({ host: to, port });
  const done = (ok) => { s.destroy(); clearTimeout(t); res(ok); };
  const t = setTimeout(() => done(false), T);
  s.on('connect', () => done(true)); s.on('error', () => done(false));
});
// Each datagram from a source port of its own, in turn: a port the kernel picked again within conntrack's
// timeout would make the probe part of an earlier, allowed flow (established), not a new one the policy judges.
let next = 20000 + Math.floor(Math.random() * 20000);
const udp = (to, port, tries = 3) => new Promise((res) => {
  const s = dgram.createSocket(to.includes(':') ? 'udp6' : 'udp4');
  const done = (ok) => { clearTimeout(t); try { s.close(); } catch {} res(ok); };
  const t = setTimeout(() => done(false), T);
  s.on('message', () => done(true));
  s.on('error', (e) => { if (e.code === 'EADDRINUSE' && tries > 0) { clearTimeout(t); try { s.close(); } catch {} res(udp(to, port, tries - 1)); } else done(false); });
  next = next >= 60000 ? 20000 : next + 1;
  s.bind(next, () => s.send('probe', port, to));
});
rl.on('line', async (l) => {
  const q = JSON.parse(l);
  const ok = await Promise.all(q.probes.map((p) => (p.proto === 'udp' ? udp : tcp)(p.to, p.port)));
  process.stdout.write(JSON.stringify({ id: q.id, ok }) + '\\n');
});
process.stdout.write('ready\\n');
`;

interface Prober {
  proc: ChildProcess;
  ask(probes: { to: string; port: number; proto: Proto }[]): Promise<boolean[]>;
}

/**
 * A JavaScript runtime for the servers and probers: node or bun when this runs under one, else the
 * compiled podwire binary itself, which is bun inside (BUN_BE_BUN=1 makes it act as bun).
 */
const runtime = (): { cmd: string; env: NodeJS.ProcessEnv } => {
  const name = process.execPath.slice(process.execPath.lastIndexOf('/') + 1);
  return /^(node|bun)$/.test(name)
    ? { cmd: process.execPath, env: process.env }
    : { cmd: process.execPath, env: { ...process.env, BUN_BE_BUN: '1' } };
};

function startIn(ns: string, script: string): Promise<ChildProcess> {
  const rt = runtime();
  const p = spawn('ip', ['netns', 'exec', ns, rt.cmd, '-e', script], { stdio: ['pipe', 'pipe', 'ignore'], env: rt.env });
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: p.stdout! });
    rl.once('line', () => resolve(p));
    p.once('exit', (c) => reject(new Error(`a lab process in ${ns} exited (${c})`)));
  });
}

async function startProber(ns: string): Promise<Prober> {
  const proc = await startIn(ns, PROBER);
  const waiting = new Map<number, (ok: boolean[]) => void>();
  let seq = 0;
  const rl = createInterface({ input: proc.stdout! });
  rl.on('line', (l) => {
    if (l === 'ready') return;
    const r = JSON.parse(l) as { id: number; ok: boolean[] };
    waiting.get(r.id)?.(r.ok);
    waiting.delete(r.id);
  });
  return {
    proc,
    ask(probes) {
      const id = ++seq;
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        proc.stdin!.write(JSON.stringify({ id, probes }) + '\n');
      });
    },
  };
}

export interface PolicyLab {
  pods: Map<PodKey, LabPod>;
  procs: ChildProcess[];
  probers: Map<PodKey, Prober>;
}

/** The 9 pods (x/a ... z/c) spread over the nodes, their servers and probers. */
export async function addPolicyPods(lab: Lab): Promise<PolicyLab> {
  const pl: PolicyLab = { pods: new Map(), procs: [], probers: new Map() };
  for (const [i, key] of POD_KEYS.entries()) {
    const node = lab.nodes[i % lab.nodes.length]!;
    const pod = await lab.addPod(node, key.replace('/', ''));
    pl.pods.set(key, pod);
  }
  await Promise.all(
    [...pl.pods].map(async ([key, pod]) => {
      pl.procs.push(await startIn(pod.ns, SERVER));
      const prober = await startProber(pod.ns);
      pl.procs.push(prober.proc);
      pl.probers.set(key, prober);
    }),
  );
  return pl;
}

export function stopPolicyLab(pl: PolicyLab): void {
  for (const p of pl.procs) p.kill();
}

export interface Overrides {
  /** Extra or replaced labels of a namespace or a pod ("x", "x/a"). */
  labels?: Record<string, Record<string, string>>;
}

/** The objects the API server would hold: Namespaces x, y, z, the 9 Pods, and the policies (a kubectl List). */
export function policyState(lab: Lab, pl: PolicyLab, policies: readonly unknown[], o: Overrides = {}): unknown {
  const namespaces = POLICY_NAMESPACES.map((n) => ({
    kind: 'Namespace',
    metadata: { name: n, labels: { ns: n, ...(o.labels?.[n] ?? {}) } },
  }));
  const pods = [...pl.pods].map(([key, p]) => {
    const [ns, name] = key.split('/') as [string, string];
    return {
      kind: 'Pod',
      metadata: { namespace: ns, name, labels: { pod: name, ...(o.labels?.[key] ?? {}) } },
      spec: {
        nodeName: p.node.name,
        containers: [
          {
            name: 'c',
            ports: [80, 81].flatMap((port) =>
              (['TCP', 'UDP'] as const).map((protocol) => ({
                name: `serve-${port}-${protocol.toLowerCase()}`,
                containerPort: port,
                protocol,
              })),
            ),
          },
        ],
      },
      status: { podIPs: p.ips.map((ip) => ({ ip })) },
    };
  });
  void lab;
  return { kind: 'List', items: [...namespaces, ...pods, ...policies.map((p) => ({ kind: 'NetworkPolicy', ...(p as object) }))] };
}

/** Enforces `policies` on every node, as the agent would from the API server. */
export async function applyPolicies(lab: Lab, pl: PolicyLab, policies: readonly unknown[], o: Overrides = {}): Promise<void> {
  const state = JSON.stringify(policyState(lab, pl, policies, o));
  await Promise.all(
    lab.nodes.map(async (n) => {
      const file = join(n.dir, 'netpol-state.json');
      writeFileSync(file, state);
      const r = await run('ip', [
        'netns',
        'exec',
        n.ns,
        lab.bin,
        'netpol',
        'sync',
        '--node',
        n.name,
        '--state',
        file,
        '--subnet-file',
        n.subnetFile,
        '--json',
      ]);
      if (r.code !== 0) throw new Error(`netpol sync on ${n.name}: ${(r.stderr || r.stdout).trim()}`);
    }),
  );
}

/** Reachability from every pod to every pod on one port and protocol: "x/a->y/b" -> reached. */
export async function probeMatrix(pl: PolicyLab, port: number, proto: Proto, family = 0): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  await Promise.all(
    POD_KEYS.map(async (from) => {
      const ok = await pl.probers.get(from)!.ask(POD_KEYS.map((to) => ({ to: pl.pods.get(to)!.ips[family]!, port, proto })));
      POD_KEYS.forEach((to, i) => out.set(`${from}->${to}`, ok[i]!));
    }),
  );
  return out;
}

/** A reachability table as upstream prints it: rows from, columns to, "." reached, "X" not. */
export function matrixTable(m: Map<string, boolean>, want?: Map<string, boolean>): string {
  const head = ['      ', ...POD_KEYS.map((k) => k.padEnd(4))].join('');
  const rows = POD_KEYS.map(
    (from) =>
      from.padEnd(6) +
      POD_KEYS.map((to) => {
        const got = m.get(`${from}->${to}`);
        const mark = got ? '.' : 'X';
        return (want && want.get(`${from}->${to}`) !== got ? `${mark}!` : mark).padEnd(4);
      }).join(''),
  );
  return [head, ...rows].join('\n');
}

/** Upstream's Reachability: everything reachable, then changed by expectations; a pod always reaches itself. */
export class Reachability {
  readonly m = new Map<string, boolean>();
  constructor(all = true) {
    for (const f of POD_KEYS) for (const t of POD_KEYS) this.m.set(`${f}->${t}`, all);
  }
  /** from and to: "x/a" (a pod), "x" (its namespace's pods), "*" (every pod). */
  expect(from: string, to: string, ok: boolean): this {
    const sel = (s: string) => POD_KEYS.filter((k) => s === '*' || k === s || k.startsWith(`${s}/`));
    for (const f of sel(from)) for (const t of sel(to)) this.m.set(`${f}->${t}`, ok);
    return this;
  }
  final(): Map<string, boolean> {
    for (const k of POD_KEYS) this.m.set(`${k}->${k}`, true);
    return this.m;
  }
}
