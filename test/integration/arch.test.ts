// podwire on every learner's machine, proven on this x86-64 one as far as emulation allows (Debian's
// qemu-user-static; the arm64 binary's libc from libc6-arm64-cross):
//   - the x86-64 binary needs no AVX2: it runs on QEMU's Nehalem and SandyBridge CPU models;
//   - the arm64 binary answers every CNI verb against a real network namespace (the kernel calls it makes
//     are the host's: `ip` and `nft` run natively), and a whole lab runs with it as the nodes' podwire
//     (node up, peers sync, the plugin) and passes every proof.
// The emulator is put in front of a binary by a two-line wrapper written here (what binfmt_misc would do,
// without registering anything on this machine).
import { spawnSync } from 'node:child_process';
import { existsSync, openSync, readFileSync, readSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, Sandbox, cni, links, linkNames, nsPath, requireRoot } from '../helpers/netns.js';
import { requireCommand } from '../helpers/runtimes.js';

const AMD64 = join(ROOT, 'dist', 'podwire-linux-amd64');
const ARM64 = join(ROOT, 'dist', 'podwire-linux-arm64');
const ARM_LIBC = '/usr/aarch64-linux-gnu';

const box = new Sandbox();
beforeAll(() => {
  requireRoot();
  requireCommand('qemu-aarch64-static', 'qemu-user-static');
  for (const b of [AMD64, ARM64]) if (!existsSync(b)) throw new Error(`${b} is missing: run npm run build:all`);
});
afterAll(() => box.cleanup());

/** The ELF header's machine: 62 x86-64, 183 aarch64. */
function elfMachine(file: string): number {
  const fd = openSync(file, 'r');
  const head = Buffer.alloc(20);
  readSync(fd, head, 0, 20, 0);
  closeSync(fd);
  return head.readUInt16LE(18);
}

/** A wrapper that runs `bin` under the emulator (with `cpu` for x86-64), recording each call's CNI_COMMAND or arguments. */
function emulated(bin: string, qemu: string, extra: string[] = []): { path: string; calls: () => string[] } {
  const dir = box.dir();
  const log = join(dir, 'calls');
  const path = join(dir, 'podwire');
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      `echo "\${CNI_COMMAND:-$*}" >> ${log}`,
      `QEMU_LD_PREFIX=${ARM_LIBC} exec ${qemu} ${extra.join(' ')} ${bin} "$@"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return { path, calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) };
}

/** A node and a pod namespace, a state dir, a config with the slice, and the pod's attachment. */
function place(subnet: string, containerID: string) {
  const node = box.ns('n');
  const pod = box.ns('p');
  const dir = box.dir();
  const conf = {
    cniVersion: '1.1.0',
    name: 'podnet',
    type: 'podwire',
    logFile: join(dir, 'podwire.log'),
    ipam: { type: 'podwire-ipam', subnet, dataDir: join(dir, 'ipam') },
  };
  return { node, pod, conf, call: { containerID, netns: nsPath(pod), ifname: 'eth0' } };
}

const versionOf = (cmd: string, args: string[]) =>
  spawnSync(cmd, args, { env: { PATH: process.env.PATH, CNI_COMMAND: 'VERSION', QEMU_LD_PREFIX: ARM_LIBC }, input: '', encoding: 'utf8' });

describe('the x86-64 binary', () => {
  it('needs no AVX2: it runs on CPU models without it, as on this machine (x86-64-v2 is the floor of every Bun runtime)', async () => {
    expect(elfMachine(AMD64)).toBe(62);
    const native = versionOf(AMD64, []);
    expect(native.status).toBe(0);
    for (const cpu of ['Nehalem', 'SandyBridge']) {
      const r = versionOf('qemu-x86_64-static', ['-cpu', cpu, AMD64]);
      expect(r.status, `${cpu}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toBe(native.stdout);
    }
    // The same binary, started as a runtime starts the plugin, wires a pod on such a CPU.
    const w = emulated(AMD64, 'qemu-x86_64-static', ['-cpu', 'Nehalem']);
    const { node, conf, call } = place('10.244.1.0/24', 'nehalem1');
    const add = await cni(node, { ...call, command: 'ADD' }, conf, w.path);
    expect(add.code, add.stdout).toBe(0);
    expect(add.json.ips[0].address).toBe('10.244.1.2/24');
    expect((await cni(node, { ...call, command: 'DEL' }, conf, w.path)).code).toBe(0);
    expect(w.calls()).toEqual(['ADD', 'DEL']);
    // Below that floor (QEMU's qemu64 model: no SSE4.2, no POPCNT) no Bun runtime starts: said in the README.
    const v1 = versionOf('qemu-x86_64-static', ['-cpu', 'qemu64', AMD64]);
    expect(v1.status).not.toBe(0);
  });
});

describe('the arm64 binary, under user-mode emulation', () => {
  it('answers VERSION, ADD, CHECK, STATUS, GC and DEL against a real network namespace', async () => {
    expect(elfMachine(ARM64)).toBe(183);
    const w = emulated(ARM64, 'qemu-aarch64-static');
    const { node, pod, conf, call } = place('10.244.7.0/24', 'arm1');
    const version = await cni(node, { command: 'VERSION' }, conf, w.path);
    expect(version.json).toEqual(JSON.parse(versionOf(BIN, []).stdout));

    const add = await cni(node, { ...call, command: 'ADD' }, conf, w.path);
    expect(add.code, add.stdout).toBe(0);
    const r = add.json;
    expect(r.ips[0]).toMatchObject({ address: '10.244.7.2/24', gateway: '10.244.7.1' });
    const eth0 = links(pod).find((l) => l.ifname === 'eth0')!;
    expect(eth0.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toContain('10.244.7.2/24');
    expect(links(node).find((l) => l.ifname === r.interfaces[1].name)?.master).toBe('cni0');

    const prev = { ...conf, prevResult: r };
    expect((await cni(node, { ...call, command: 'CHECK' }, prev, w.path)).code).toBe(0);
    expect((await cni(node, { command: 'STATUS' }, conf, w.path)).code).toBe(0);
    // GC with this attachment valid keeps it; a stale one of another container would go.
    const gc = { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'arm1', ifname: 'eth0' }] };
    expect((await cni(node, { command: 'GC' }, gc, w.path)).code).toBe(0);
    expect(linkNames(pod)).toContain('eth0');

    expect((await cni(node, { ...call, command: 'DEL' }, prev, w.path)).code).toBe(0);
    expect(linkNames(pod)).toEqual(['lo']);
    expect(linkNames(node).filter((n) => n.startsWith('veth'))).toEqual([]);
    expect(w.calls()).toEqual(['VERSION', 'ADD', 'CHECK', 'STATUS', 'GC', 'DEL']);
  });

  it("is the nodes' podwire in a whole lab (node up, peers sync, every CNI call): every proof passes", () => {
    const w = emulated(ARM64, 'qemu-aarch64-static');
    const r = spawnSync(BIN, ['lab', '--nodes', '2', '--pods-per-node', '2', '--bin', w.path, '--json', '--no-trace'], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.ok).toBe(true);
    expect(out.proofs.find((p: { proof: string }) => p.proof === 'podToPod')).toEqual({
      proof: 'podToPod',
      family: 4,
      passed: 12,
      failed: 0,
    });
    expect(out.failed).toEqual([]);
    const calls = w.calls();
    for (const what of ['node up', 'peers sync', 'ADD', 'DEL', 'node down'])
      expect(
        calls.some((c) => c.startsWith(what)),
        what,
      ).toBe(true);
  }, 300_000);
});
