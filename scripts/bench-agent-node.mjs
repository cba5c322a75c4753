// @ts-check
// What the agent benchmarks share: a namespace of their own with a node's uplink, the fake API server of
// the tests in it, and `podwire agent` started there against it (node0, the cluster network
// 10.128.0.0/9). Everything lives in that namespace and a temp dir, removed by cleanup().
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'dist', 'podwire');
const PORT = 6443;

/** @param {() => boolean} ok @param {number} ms @param {number} [step] */
export async function until(ok, ms, step = 20) {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, step));
  }
}

/** @param {string} prefix a name for the namespace and the temp dir */
export async function agentNode(prefix) {
  const ns = `${prefix}${process.pid % 100000}`;
  const dir = mkdtempSync(join(tmpdir(), `podwire-${prefix}-`));
  /** @type {import('node:child_process').ChildProcess[]} */
  const procs = [];
  const ip = (/** @type {string[]} */ ...args) => execFileSync('ip', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const cleanup = () => {
    for (const p of procs) p.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
    process.once(sig, () => {
      cleanup();
      process.exit(130);
    });
  }
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
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: "http://127.0.0.1:${PORT}", insecure-skip-tls-verify: true}\n  name: b\n` +
      'contexts:\n- context: {cluster: b, user: a}\n  name: b\ncurrent-context: b\nusers:\n- name: a\n  user: {token: "t"}\n',
  );
  return {
    ns,
    dir,
    procs,
    events,
    ip,
    cleanup,
    /** Operations for the API server, as JSON lines; resolves once it has done as many as were sent in all. */
    send: async (/** @type {object[]} */ ops) => {
      const done = events.filter((e) => e.done).length;
      api.stdin?.write(ops.map((o) => JSON.stringify(o) + '\n').join(''));
      await until(() => events.filter((e) => e.done).length >= done + ops.length, 60_000);
    },
    /** Starts the agent of node0; its stderr collects in err(). */
    startAgent: () => {
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
      return { agent, err: () => err };
    },
  };
}
