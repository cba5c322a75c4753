// Real container runtimes (podman, containerd) driving podwire. Each runs inside a node namespace the test
// makes (through nsenter --net, so the runtime's own mounts of /run/netns stay visible to later commands),
// with its state under a temp dir. What a runtime still puts on the host outside that dir (its libcni
// cache, runc's state dir, podman's shm lock, netns files) is tracked by HostTrail and removed again.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { DiskStore } from '../../src/ipam/disk-store.js';
import { nsPath, sh } from './netns.js';

/** Fails loudly (never skips) when a runtime the test needs is not installed. */
export function requireCommand(cmd: string, pkg: string): void {
  try {
    sh('sh', ['-c', 'command -v "$1"', 'sh', cmd]);
  } catch {
    throw new Error(`${cmd} not found: install Debian's ${pkg} (npm test does: scripts/setup.mjs)`);
  }
}

/**
 * Where runtimes leave things on the host outside the dirs they are given. HostTrail snapshots these
 * directories' entries; added() names anything new (a test asserts it is empty at the end), cleanup()
 * removes only what a runtime is known to make there, never anything else that appeared meanwhile.
 */
export const RUNTIME_HOST_DIRS = [
  '/run',
  '/run/netns',
  '/var/lib',
  '/var/lib/cni',
  '/var/lib/cni/results',
  '/dev/shm',
  '/etc/cni/net.d',
  '/opt',
  '/opt/cni',
  '/opt/cni/bin',
];
const RUNTIME_MADE = [
  /^\/run\/(runc|containerd|containers|libpod|crun)$/,
  /^\/run\/netns\/(netns|cni)-[0-9a-f-]+$/,
  /^\/var\/lib\/(containers|containerd|cni)$/,
  /^\/opt\/containerd$/,
  /^\/var\/lib\/cni\/results$/,
  /^\/dev\/shm\/libpod_lock$/,
];

export class HostTrail {
  private readonly before = new Map<string, Set<string>>();

  /** `ours`: paths the test itself puts there (a conflist, a plugin binary), removed with the rest. */
  constructor(
    private readonly ours: RegExp[] = [],
    private readonly dirs: string[] = RUNTIME_HOST_DIRS,
  ) {
    for (const d of dirs) this.before.set(d, new Set(entries(d)));
  }

  /** Paths that did not exist when the trail was made. */
  added(): string[] {
    return this.dirs.flatMap((d) =>
      existsSync(d)
        ? entries(d)
            .filter((e) => !this.before.get(d)?.has(e))
            .map((e) => join(d, e))
        : [],
    );
  }

  cleanup(): void {
    const made = [...RUNTIME_MADE, ...this.ours];
    // Deepest first, so a watched directory inside a new one is emptied before the new one goes.
    for (const p of this.added().sort((a, b) => b.length - a.length)) {
      if (!made.some((re) => re.test(p))) continue;
      if (p.startsWith('/run/netns/')) {
        try {
          execFileSync('umount', ['-l', p], { stdio: 'ignore' });
        } catch {
          // not mounted any more
        }
      }
      rmSync(p, { recursive: true, force: true });
    }
  }
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const APPLETS = ['sh', 'sleep', 'ip', 'ping', 'cat', 'httpd', 'nc', 'hostname', 'readlink', 'touch', 'echo'];

/** A busybox root filesystem: /bin/busybox (static) and its applets as links. */
export function busyboxRootfs(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  copyFileSync('/bin/busybox', join(bin, 'busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(bin, a));
  mkdirSync(join(dir, 'www'));
  writeFileSync(join(dir, 'www', 'index.html'), 'hello from the pod\n');
  return dir;
}

/**
 * An OCI image archive (oci-layout, index.json, blobs) of a root filesystem, built locally: one
 * uncompressed layer, so its digest is its diff ID. `ctr images import` takes the name from the
 * io.containerd.image.name annotation.
 */
export function ociArchive(rootfs: string, out: string, name: string, cmd: string[] = ['sh']): string {
  const layout = `${out}.d`;
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const blob = (data: Buffer): { digest: string; size: number } => {
    const hex = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
  const layer = blob(
    execFileSync('tar', ['-C', rootfs, '--owner=0', '--group=0', '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 28 }),
  );
  const config = blob(
    json({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: cmd, Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    }),
  );
  const manifest = blob(
    json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    }),
  );
  const ref = { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name.split(':').pop() };
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: ref,
        },
      ],
    }),
  );
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  execFileSync('tar', ['-C', layout, '-cf', out, '.']);
  return out;
}

/** Runs a command with the node namespace as its network namespace, but the host's mounts. */
export function inNode(node: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  return execFileSync('nsenter', [`--net=${nsPath(node)}`, cmd, ...args], {
    encoding: 'utf8',
    env: env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
}

/**
 * A client namespace on a /24 with the node: what "another host on the node's network" means here; with
 * `v6`, also on a /64 (node's address, client's), without duplicate address detection.
 */
export function linkClient(node: string, client: string, nodeIP: string, clientIP: string, v6?: [string, string]): void {
  sh('ip', ['-n', node, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client]);
  sh('ip', ['-n', node, 'addr', 'add', `${nodeIP}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', client, 'addr', 'add', `${clientIP}/24`, 'dev', 'eth0']);
  if (v6) {
    sh('ip', ['-n', node, 'addr', 'add', `${v6[0]}/64`, 'dev', 'eth0', 'nodad']);
    sh('ip', ['-n', client, 'addr', 'add', `${v6[1]}/64`, 'dev', 'eth0', 'nodad']);
  }
  for (const ns of [node, client]) sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['netns', 'exec', node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
}

/** Reserved addresses of a network in an IPAM data dir. */
export const reserved = (dataDir: string, net: string): string[] => [...DiskStore.forNetwork(dataDir, net).list().keys()];

export interface CniCall {
  cmd: string;
  containerID: string;
  args?: string;
  netns?: string;
  outcome: string;
}

/** The plugin's summary log lines (one per CNI call, with what the runtime sent). */
export function cniCalls(logFile: string): CniCall[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((l) => l.outcome);
}

/** containerd, its shim, ctr and runc, and nsenter (to start it in a node's network namespace). */
export function requireContainerd(): void {
  for (const cmd of ['containerd', 'ctr', 'containerd-shim-runc-v2']) requireCommand(cmd, 'containerd');
  requireCommand('runc', 'runc');
  requireCommand('nsenter', 'util-linux');
}

/**
 * A containerd config (version 2) keeping everything in `dir`: root, state, the gRPC and ttrpc sockets
 * (`dir/containerd.sock`), and the "opt" plugin's dir (otherwise /opt/containerd on the host). `extra` is
 * appended (plugin sections).
 */
export function containerdConfig(dir: string, extra: string[] = [], top: string[] = []): string {
  return [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    ...top,
    '[grpc]',
    `  address = "${join(dir, 'containerd.sock')}"`,
    '[ttrpc]',
    `  address = "${join(dir, 'containerd.ttrpc.sock')}"`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${join(dir, 'opt')}"`,
    ...extra,
  ].join('\n');
}

/** Starts containerd with dir/config.toml, its network namespace the node's (nsenter --net: runc needs the host's /sys). */
export function spawnContainerd(node: string, dir: string): ChildProcess {
  const log = openSync(join(dir, 'containerd.log'), 'a');
  return spawn('nsenter', [`--net=${nsPath(node)}`, 'containerd', '--config', join(dir, 'config.toml')], { stdio: ['ignore', log, log] });
}

/** After containerd: its shims (which outlive it and carry `dir` in their command line) killed, mounts under `dir` gone. */
export function cleanupContainerd(dir: string): void {
  spawnSync('pkill', ['-9', '-f', dir]);
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((p) => p.startsWith(dir));
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
}
