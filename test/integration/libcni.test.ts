// podwire driven by libcni, the library containerd and CRI-O use (Debian's golang-github-appc-cni-dev,
// built offline by the test into test/libcni's cnitool-lite): results must parse into libcni's own types,
// CHECK must pass after ADD and fail once the pod's eth0 is gone, DEL cleans up the whole chain, and GC
// releases what DEL never did. All inside namespaces this file makes.
import { execFileSync } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, Sandbox, nsPath, requireRoot, sh } from '../helpers/netns.js';
import { reserved as reservedIn } from '../helpers/runtimes.js';

const sb = new Sandbox();
let tool: string;
let dir: string;
let node: string;

beforeAll(() => {
  requireRoot();
  dir = sb.dir();
  tool = join(dir, 'cnitool-lite');
  // Offline, against Debian's libcni sources (GOPATH mode, no module download).
  execFileSync('go', ['build', '-o', tool, '.'], {
    cwd: join(ROOT, 'test', 'libcni'),
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', CGO_ENABLED: '0', GOCACHE: join(dir, 'gocache'), GOFLAGS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // libcni finds plugins by type in CNI_PATH: podwire under both of its names, then the reference plugins.
  mkdirSync(join(dir, 'bin'));
  for (const name of ['podwire', 'podwire-ipam']) symlinkSync(BIN, join(dir, 'bin', name));
  node = sb.ns('lcnode');
}, 120_000);

afterAll(() => sb.cleanup());

function conflist(version: string, onlyPodwire = false): string {
  const list = JSON.parse(readFileSync(join(ROOT, 'cni-conf', '10-podwire.conflist'), 'utf8'));
  list.cniVersion = version;
  Object.assign(list.plugins[0], { logFile: join(dir, 'podwire.log'), ipam: { ...list.plugins[0].ipam, dataDir: join(dir, 'ipam') } });
  if (onlyPodwire) list.plugins = list.plugins.slice(0, 1);
  const file = join(dir, `${version}${onlyPodwire ? '-podwire' : ''}.conflist`);
  writeFileSync(file, JSON.stringify(list));
  return file;
}

function libcni(...args: string[]): any {
  try {
    return JSON.parse(
      execFileSync('ip', ['netns', 'exec', node, tool, ...args], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, CNI_PATH: `${join(dir, 'bin')}:/usr/lib/cni`, LIBCNI_CACHE: join(dir, 'cache') },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
  } catch (e) {
    const out = (e as { stdout?: string }).stdout ?? '';
    return out.trim() ? JSON.parse(out) : { error: String(e) };
  }
}

const reserved = () => reservedIn(join(dir, 'ipam'), 'podwire');
const natRules = () => sh('ip', ['netns', 'exec', node, 'iptables-save', '-t', 'nat']);

// Debian's libcni is 1.1.x: it parses results up to 1.0.0 (1.1.0 arrived with libcni 1.2).
const LIBCNI_TYPES: Record<string, string> = {
  '0.3.0': '*types040.Result',
  '0.3.1': '*types040.Result',
  '0.4.0': '*types040.Result',
  '1.0.0': '*types100.Result',
};

describe.each(Object.keys(LIBCNI_TYPES))('libcni, cniVersion %s, podwire + portmap', (version) => {
  const id = `libcni-${version}`;
  let pod: string;
  let file: string;
  const rc = JSON.stringify({ portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });

  beforeAll(() => {
    pod = sb.ns('lcpod');
    file = conflist(version);
  });

  it('ADD: the result parses into libcni types, with the Pod IP and the hostPort rule', () => {
    const r = libcni('add', file, nsPath(pod), id, rc);
    expect(r.error).toBeUndefined();
    expect(r.type).toBe(LIBCNI_TYPES[version]);
    expect(r.version).toBe(version);
    expect(r.ips).toEqual([expect.stringMatching(/^10\.244\.1\.\d+\/24$/)]);
    expect(r.interfaces).toBe(3);
    expect(natRules()).toContain(`${r.ips[0].split('/')[0]}:80`);
  });

  it('CHECK passes after ADD, and fails once eth0 is removed by hand', () => {
    if (version < '0.4.0') {
      expect(libcni('check', file, nsPath(pod), id).error).toMatch(/does not support the CHECK command/);
      return;
    }
    expect(libcni('check', file, nsPath(pod), id)).toEqual({ ok: true });
    sh('ip', ['-n', pod, 'link', 'del', 'eth0']);
    expect(libcni('check', file, nsPath(pod), id).error).toMatch(/eth0/);
  });

  it('DEL in reverse order leaves no address and no portmap rule', () => {
    expect(libcni('del', file, nsPath(pod), id, rc)).toEqual({ ok: true });
    expect(reserved()).toEqual([]);
    expect(natRules()).not.toContain('8080');
  });
});

describe('libcni exec layer, cniVersion 1.1.0: GC and STATUS', () => {
  it('GC releases the attachment DEL never removed and keeps the valid one; STATUS answers', () => {
    const [a, b] = [sb.ns('lcgc'), sb.ns('lcgc')];
    const add = conflist('1.0.0', true);
    expect(libcni('add', add, nsPath(a), 'gc-keep').ips).toHaveLength(1);
    const lost = libcni('add', add, nsPath(b), 'gc-lost');
    expect(reserved()).toHaveLength(2);
    const gc = conflist('1.1.0', true);
    expect(libcni('gc', gc, JSON.stringify([{ containerID: 'gc-keep', ifname: 'eth0' }]))).toEqual({ ok: true });
    expect(reserved()).toEqual([expect.not.stringContaining(lost.ips[0].split('/')[0])]);
    expect(readFileSync(join(dir, 'ipam', 'podwire', reserved()[0]!), 'utf8')).toContain('gc-keep');
    expect(libcni('status', gc)).toEqual({ ok: true });
    expect(libcni('del', add, nsPath(a), 'gc-keep')).toEqual({ ok: true });
    expect(reserved()).toEqual([]);
  });
});
