// podman 4 with its CNI backend drives podwire (cni-conf/10-podwire.conflist: podwire + portmap) exactly
// as on a podman host: VERSION, ADD with CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=..., netns files in
// /run/netns, DEL with prevResult. podman runs with a node namespace of the test's as its network
// namespace, its storage and run state in a temp dir, busybox as the root filesystem (no image pull);
// `podman pod create` builds its pause image offline from catatonit.
import { PER_POD, firewallText } from '../helpers/firewall.js';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, REF_PLUGINS, Sandbox, links, requireRoot, sh } from '../helpers/netns.js';
import { loadConflist } from '../helpers/conflist.js';
import { httpGet } from '../../src/lab/netns.js';
import { type CniCall, HostTrail, busyboxRootfs, cniCalls, inNode, linkClient, requireCommand, reserved } from '../helpers/runtimes.js';

const NET = 'podwire';
const NODE_IP = '192.168.77.1';

/** One podman "host": containers.conf, the network's conflist, plugin dirs, storage, all under dir. */
class Podman {
  readonly data: string;
  readonly logFile: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly node: string,
    readonly dir: string,
  ) {
    this.data = join(dir, 'ipam');
    this.logFile = join(dir, 'podwire.log');
    sh('mkdir', ['-p', join(dir, 'net'), join(dir, 'bin')]);
    symlinkSync(BIN, join(dir, 'bin', 'podwire'));
    const list = loadConflist('10-podwire.conflist', (pl) => {
      if (pl.type === 'podwire')
        Object.assign(pl, { logFile: this.logFile, logLevel: 'info', ipam: { ...pl.ipam, subnet: '10.244.7.0/24', dataDir: this.data } });
    });
    writeFileSync(join(dir, 'net', `${NET}.conflist`), JSON.stringify(list));
    // What podman 4 needs on these machines (FIELD-NOTES): runc (crun fails on hybrid cgroups), cgroupfs,
    // file events, explicit ulimits; the CNI backend with our network as the default.
    writeFileSync(
      join(dir, 'containers.conf'),
      [
        '[containers]',
        'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]',
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = "${join(dir, 'events.log')}"`,
        'runtime = "runc"',
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${join(dir, 'bin')}", "${REF_PLUGINS}"]`,
        `network_config_dir = "${join(dir, 'net')}"`,
        `default_network = "${NET}"`,
      ].join('\n'),
    );
    this.env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf') };
  }

  run(...args: string[]): string {
    const global = [
      '--root',
      join(this.dir, 'storage'),
      '--runroot',
      join(this.dir, 'run'),
      '--tmpdir',
      join(this.dir, 'tmp'),
      '--storage-driver',
      'vfs',
    ];
    return inNode(this.node, 'podman', [...global, ...args], this.env).trim();
  }

  /** The pod-side IPv4 address of a container, read in its own namespace. */
  ipOf(container: string): string {
    const pid = this.run('inspect', '--format', '{{.State.Pid}}', container);
    const out = sh('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
    return /inet (\S+)\//.exec(out)?.[1] ?? '';
  }

  netnsOf(container: string): string {
    return sh('readlink', [`/proc/${this.run('inspect', '--format', '{{.State.Pid}}', container)}/ns/net`]).trim();
  }

  calls(): CniCall[] {
    return cniCalls(this.logFile);
  }

  teardown(): void {
    for (const args of [
      ['pod', 'rm', '-af', '-t', '0'],
      ['rm', '-af', '-t', '0'],
    ]) {
      try {
        this.run(...args);
      } catch {
        // nothing left to remove, or podman is gone
      }
    }
  }
}

const sb = new Sandbox();
let pm: Podman | undefined;
let trail: HostTrail | undefined;
let client = '';
let rootfs = '';

beforeAll(() => {
  requireRoot();
  for (const [cmd, pkg] of [
    ['podman', 'podman'],
    ['runc', 'runc'],
    ['catatonit', 'catatonit'],
  ])
    requireCommand(cmd, pkg);
  const node = sb.ns('pmnode');
  client = sb.ns('pmclient');
  linkClient(node, client, NODE_IP, '192.168.77.2');
  trail = new HostTrail([new RegExp(`^/var/lib/cni/results/${NET}-`)]);
  rootfs = busyboxRootfs(join(sb.dir(), 'rootfs'));
  pm = new Podman(node, sb.dir());
});
afterAll(() => {
  pm?.teardown();
  sb.cleanup();
  trail?.cleanup();
});

describe('podman 4 (CNI backend)', () => {
  it('podman run: eth0 comes from podwire, and two containers on cni0 reach each other', () => {
    const p = pm!;
    const ids = ['a', 'b'].map((name) => p.run('run', '-d', '--name', name, '--rootfs', rootfs, 'sleep', '600'));
    const [ipA, ipB] = ['a', 'b'].map((n) => p.ipOf(n));
    expect(ipA).toMatch(/^10\.244\.7\.\d+$/);
    expect(ipB).toMatch(/^10\.244\.7\.\d+$/);
    expect(ipA).not.toBe(ipB);
    // The reservation names the container podman gave the address to.
    expect(readFileSync(join(p.data, NET, ipA!), 'utf8').split(/\r?\n/)[0]).toBe(ids[0]);
    expect(links(p.node).filter((l) => l.master === 'cni0')).toHaveLength(2);
    expect(p.run('exec', 'a', 'ping', '-c', '1', '-W', '2', ipB!)).toContain('1 packets received');
    // What podman sent: the pod name in CNI_ARGS, with IgnoreUnknown so plugins may skip keys they don't know.
    const add = p.calls().find((c) => c.cmd === 'ADD' && c.containerID === ids[0]);
    expect(add?.outcome).toBe('ok');
    expect(add?.args).toMatch(/IgnoreUnknown=1/);
    expect(add?.args).toMatch(/K8S_POD_NAME=a/);
    expect(add?.netns).toMatch(/^\/run\/netns\/netns-/);
  });

  it('--ip and --mac-address arrive as IP= and MAC= in CNI_ARGS and are honoured', () => {
    const p = pm!;
    const id = p.run(
      'run',
      '-d',
      '--name',
      'c',
      '--ip',
      '10.244.7.77',
      '--mac-address',
      '02:42:0a:f4:07:4d',
      '--rootfs',
      rootfs,
      'sleep',
      '600',
    );
    expect(p.ipOf('c')).toBe('10.244.7.77');
    expect(p.run('exec', 'c', 'cat', '/sys/class/net/eth0/address')).toBe('02:42:0a:f4:07:4d');
    const add = p.calls().find((c) => c.cmd === 'ADD' && c.containerID === id);
    expect(add?.args).toMatch(/IP=10\.244\.7\.77/);
    expect(add?.args).toMatch(/MAC=02:42:0a:f4:07:4d/);
  });

  it('podman pod: the pause container gets eth0, a second container shares it, -p reaches it, pod rm -f releases it', async () => {
    const p = pm!;
    p.run('pod', 'create', '--name', 'web', '-p', '8080:80');
    p.run('pod', 'start', 'web');
    const infra = p.run('pod', 'inspect', '--format', '{{.InfraContainerID}}', 'web');
    expect(p.run('inspect', '--format', '{{.ImageName}}', infra)).toMatch(/podman-pause/);
    const podIP = p.ipOf(infra);
    expect(podIP).toMatch(/^10\.244\.7\.\d+$/);
    expect(readFileSync(join(p.data, NET, podIP), 'utf8').split(/\r?\n/)[0]).toBe(infra);

    const httpd = p.run('run', '-d', '--pod', 'web', '--name', 'httpd', '--rootfs', rootfs, 'httpd', '-f', '-p', '80', '-h', '/www');
    expect(p.netnsOf('httpd')).toBe(p.netnsOf(infra));
    expect(p.ipOf('httpd')).toBe(podIP);
    // Only the pause container is attached; the second container joins its namespace without a CNI call.
    expect(p.calls().filter((c) => c.cmd === 'ADD' && c.containerID === infra)).toHaveLength(1);
    expect(p.calls().filter((c) => c.containerID === httpd)).toEqual([]);

    // hostPort 8080 on the node → containerPort 80 in the pod, from another host on the node's network.
    let reply = '';
    for (let i = 0; i < 20 && !reply.includes('hello'); i++) {
      reply = await httpGet(client, NODE_IP, 8080);
      if (!reply) await new Promise((r) => setTimeout(r, 100));
    }
    expect(reply).toContain('hello from the pod');

    const vethsBefore = links(p.node).filter((l) => l.master === 'cni0').length;
    p.run('pod', 'rm', '-f', '-t', '0', 'web');
    expect(reserved(p.data, NET)).not.toContain(podIP);
    expect(links(p.node).filter((l) => l.master === 'cni0')).toHaveLength(vethsBefore - 1);
    // Nothing left in either firewall backend (auto picks nftables here: the hostPort was a map element).
    const nat = firewallText(p.node);
    expect(nat).not.toMatch(PER_POD);
    expect(nat).not.toContain('8080');
    expect(nat).not.toContain(podIP);
    const del = p.calls().find((c) => c.cmd === 'DEL' && c.containerID === infra);
    expect(del?.outcome).toBe('ok');
  });

  it('removing every container leaves no reservation, no veth, no netns file and no libcni cache entry', () => {
    const p = pm!;
    p.run('rm', '-f', '-t', '0', 'a', 'b', 'c');
    expect(reserved(p.data, NET)).toEqual([]);
    expect(
      links(p.node)
        .map((l) => l.ifname)
        .sort(),
    ).toEqual(['cni0', 'eth0', 'lo']);
    expect(p.calls().filter((c) => c.outcome !== 'ok')).toEqual([]);
    expect(trail!.added().filter((f) => f.startsWith('/run/netns/') || f.startsWith('/var/lib/cni/results/'))).toEqual([]);
  });
});
