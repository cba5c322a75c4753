// containerd 1.6 drives podwire through `ctr run --cni` (go-cni on libcni), as on a containerd host: no
// VERSION call, CNI_CONTAINERID=<namespace>-<id>, CNI_NETNS=/proc/<pid>/ns/net on ADD and an EMPTY
// CNI_NETNS on DEL — the address must still be released. containerd is started by the test with its own
// root, state and sockets in a temp dir, inside a node namespace; the image is busybox built locally as
// an OCI archive and imported. ctr reads the first conflist in /etc/cni/net.d and plugins from
// /opt/cni/bin: the test puts its own there under unique names and removes them again.
import { type ChildProcess, execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, Sandbox, links, nsPath, requireRoot } from '../helpers/netns.js';
import { loadConflist } from '../helpers/conflist.js';
import {
  HostTrail,
  busyboxRootfs,
  cleanupContainerd,
  cniCalls,
  containerdConfig,
  inNode,
  ociArchive,
  requireContainerd,
  reserved,
  spawnContainerd,
} from '../helpers/runtimes.js';

const TAG = `podwire-test-${process.pid}`;
const NET = `podwire-ctr${process.pid}`;
const NS = `pwtest${process.pid}`; // containerd namespace
const IMAGE = 'localhost/podwire-busybox:test';
const CONFLIST = `/etc/cni/net.d/00-${TAG}.conflist`;
const PLUGIN = `/opt/cni/bin/${TAG}`;

const sb = new Sandbox();
let node = '';
let dir = '';
let daemon: ChildProcess | undefined;
let trail: HostTrail | undefined;

const sock = (): string => join(dir, 'containerd.sock');
const ctr = (...args: string[]): string => inNode(node, 'ctr', ['--address', sock(), '-n', NS, ...args]);

/** `ctr run --rm --cni` in the foreground, as a user runs it: ctr sends DEL when the container exits. */
function ctrRun(id: string, cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = [
    `--net=${nsPath(node)}`,
    'ctr',
    '--address',
    sock(),
    '-n',
    NS,
    'run',
    '--rm',
    '--cni',
    '--snapshotter',
    'native',
    IMAGE,
    id,
    ...cmd,
  ];
  return new Promise((resolve) => {
    execFile('nsenter', args, { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const calls = () => cniCalls(join(dir, 'podwire.log'));

/** The address reserved for a container, once its ADD is done. */
async function addressOf(containerID: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    for (const ip of reserved(join(dir, 'ipam'), NET)) {
      if (readFileSync(join(dir, 'ipam', NET, ip), 'utf8').startsWith(containerID)) return ip;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no address was reserved for ${containerID}`);
}

beforeAll(async () => {
  requireRoot();
  requireContainerd();
  node = sb.ns('ctrnode');
  dir = sb.dir();
  trail = new HostTrail([new RegExp(`^/var/lib/cni/results/${NET}-`), new RegExp(`^(${CONFLIST}|${PLUGIN}|/opt/cni(/bin)?)$`)]);

  mkdirSync('/opt/cni/bin', { recursive: true });
  symlinkSync(BIN, PLUGIN);
  const list = loadConflist('10-podwire.conflist', (pl) => {
    if (pl.type === 'podwire') {
      Object.assign(pl, {
        type: TAG,
        logFile: join(dir, 'podwire.log'),
        ipam: { ...pl.ipam, subnet: '10.244.8.0/24', dataDir: join(dir, 'ipam') },
      });
    }
  });
  // ctr passes no port mappings: podwire alone.
  writeFileSync(CONFLIST, JSON.stringify({ ...list, name: NET, plugins: list.plugins.filter((p) => p.type === TAG) }));
  const first = readdirSync('/etc/cni/net.d')
    .filter((f) => /\.(conflist|conf|json)$/.test(f))
    .sort()[0];
  if (join('/etc/cni/net.d', first ?? '') !== CONFLIST) throw new Error(`ctr would use /etc/cni/net.d/${first}, not the test's conflist`);

  writeFileSync(join(dir, 'config.toml'), containerdConfig(dir, [], ['disabled_plugins = ["io.containerd.grpc.v1.cri"]']));
  daemon = spawnContainerd(node, dir);
  for (let i = 0; i < 100 && !existsSync(sock()); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(sock())) throw new Error(`containerd did not start: ${readFileSync(join(dir, 'containerd.log'), 'utf8').slice(-2000)}`);

  const archive = ociArchive(busyboxRootfs(join(dir, 'rootfs')), join(dir, 'busybox.tar'), IMAGE);
  ctr('images', 'import', '--snapshotter', 'native', archive);
});

afterAll(() => {
  if (node && dir) {
    try {
      for (const line of ctr('tasks', 'ls', '-q').split('\n').filter(Boolean)) ctr('tasks', 'kill', '-s', 'SIGKILL', line);
    } catch {
      // containerd already gone
    }
  }
  daemon?.kill();
  if (dir) cleanupContainerd(dir);
  rmSync(`/run/containerd/runc/${NS}`, { recursive: true, force: true });
  sb.cleanup();
  trail?.cleanup();
});

describe('containerd (ctr run --cni)', () => {
  it('the container gets eth0 from podwire and reaches a second one; DEL with an empty CNI_NETNS releases both addresses', async () => {
    const a = ctrRun('a', ['sleep', '600']);
    const ipA = await addressOf(`${NS}-a`);
    expect(ipA).toMatch(/^10\.244\.8\.\d+$/);

    const b = await ctrRun('b', ['sh', '-c', `ip -o -4 addr show eth0; ping -c 1 -W 2 ${ipA}`]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/inet 10\.244\.8\.\d+\/24/);
    expect(b.stdout).toContain('1 packets received');

    ctr('tasks', 'kill', '-s', 'SIGKILL', 'a');
    await a;
    const byB = calls().filter((c) => c.containerID === `${NS}-b`);
    expect(byB.map((c) => [c.cmd, c.outcome])).toEqual([
      ['ADD', 'ok'],
      ['DEL', 'ok'],
    ]);
    expect(byB[0]!.netns).toMatch(/^\/proc\/\d+\/ns\/net$/);
    expect(byB[1]!.netns).toBe('');
    const delA = calls().find((c) => c.containerID === `${NS}-a` && c.cmd === 'DEL');
    expect(delA).toMatchObject({ netns: '', outcome: 'ok' });

    expect(reserved(join(dir, 'ipam'), NET)).toEqual([]);
    expect(
      links(node)
        .map((l) => l.ifname)
        .sort(),
    ).toEqual(['cni0', 'lo']);
    expect(
      trail!.added().filter((f) => f.startsWith('/var/lib/cni/results/') || f.startsWith('/run/netns/') || f === '/opt/containerd'),
    ).toEqual([]);
  });
});
