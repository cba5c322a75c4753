// `podwire install` as the DaemonSet's init container runs it: one binary on disk, podwire-ipam a link to
// it, and an upgrade that replaces both while the runtime keeps starting and stopping pods. Needs root.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, REF_PLUGINS, Sandbox, cni, linkNames, nsPath, requireRoot } from '../helpers/netns.js';

const box = new Sandbox();
beforeAll(requireRoot);
afterAll(() => box.cleanup());

const exec = promisify(execFile);
const install = (...args: string[]) => exec(BIN, ['install', ...args]);
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('podwire install', () => {
  it('writes the binary once and makes podwire-ipam a link to it, replacing an old copy', async () => {
    const bin = box.dir();
    writeFileSync(join(bin, 'podwire-ipam'), 'an old full copy', { mode: 0o755 });

    const out = await install('--bin-dir', bin);
    expect(out.stdout).toContain(`linked ${join(bin, 'podwire-ipam')} -> podwire`);
    expect(lstatSync(join(bin, 'podwire')).isFile()).toBe(true);
    expect(lstatSync(join(bin, 'podwire')).mode & 0o777).toBe(0o755);
    expect(sha(join(bin, 'podwire'))).toBe(sha(BIN));
    expect(lstatSync(join(bin, 'podwire-ipam')).isSymbolicLink()).toBe(true);
    // relative, so it holds wherever the directory is mounted (/host/opt/cni/bin in the init container)
    expect(readlinkSync(join(bin, 'podwire-ipam'))).toBe('podwire');
    expect(readdirSync(bin).sort()).toEqual(['podwire', 'podwire-ipam']); // no temp file left behind

    // once more (the init container runs on every restart): same result
    await install('--bin-dir', bin);
    expect(readdirSync(bin).sort()).toEqual(['podwire', 'podwire-ipam']);
    expect(readlinkSync(join(bin, 'podwire-ipam'))).toBe('podwire');
  });

  it('refuses a conflist that is not JSON, naming it, and installs nothing', async () => {
    const bin = join(box.dir(), 'bin');
    const conf = box.dir();
    const bad = join(box.dir(), '10-bad.conflist');
    writeFileSync(bad, '{"cniVersion": "1.0.0", "plugins": [');
    const err = await install('--bin-dir', bin, '--conf-dir', conf, '--conflist', bad).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toContain(`--conflist ${bad} is not JSON`);
    expect(existsSync(bin)).toBe(false);
    expect(readdirSync(conf)).toEqual([]);
  });

  it("writes the agent's conflist from its template (the DaemonSet's init container), or refuses a bad one and writes nothing", async () => {
    const bin = join(box.dir(), 'bin');
    const conf = box.dir();
    const template = join(box.dir(), 'template.conflist');
    const tpl = {
      cniVersion: '1.0.0',
      name: 'podwire',
      plugins: [
        { type: 'podwire', bridge: 'cni0', ipam: { type: 'podwire-ipam', dataDir: '/var/lib/cni/networks' } },
        { type: 'bandwidth', capabilities: { bandwidth: true } },
      ],
    };
    writeFileSync(template, JSON.stringify(tpl));
    const out = await install(
      '--bin-dir',
      bin,
      '--conf-dir',
      conf,
      '--agent-conflist',
      template,
      '--subnet-file',
      '/run/pw-test/subnet.json',
    );
    expect(out.stdout).toContain(`installed ${join(conf, '10-podwire.conflist')}`);
    expect(readdirSync(conf)).toEqual(['10-podwire.conflist']);
    const written = JSON.parse(readFileSync(join(conf, '10-podwire.conflist'), 'utf8'));
    expect(written.plugins[0].ipam).toMatchObject({ type: 'podwire-ipam', subnetFile: '/run/pw-test/subnet.json' });
    expect(written.plugins[1]).toEqual(tpl.plugins[1]); // chained plugins kept as written

    const noPodwire = join(box.dir(), 'other.conflist');
    writeFileSync(noPodwire, JSON.stringify({ ...tpl, plugins: [tpl.plugins[1]] }));
    const conf2 = box.dir();
    const bin2 = join(box.dir(), 'bin');
    const err = await install('--bin-dir', bin2, '--conf-dir', conf2, '--agent-conflist', noPodwire).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/podwire/);
    expect(existsSync(bin2)).toBe(false);
    expect(readdirSync(conf2)).toEqual([]);
  });

  it('upgrades while pods start and stop: every ADD and DEL succeeds, nothing is left', async () => {
    const bin = box.dir();
    await install('--bin-dir', bin);
    const node = box.ns('n');
    const state = box.dir();
    const pods = [box.ns('p'), box.ns('p'), box.ns('p'), box.ns('p')];
    // podwire itself, and the reference bridge delegating to podwire-ipam (the link) through CNI_PATH
    const nets = [
      {
        bin: join(bin, 'podwire'),
        path: bin,
        conf: { cniVersion: '1.0.0', name: 'pw', type: 'podwire', ipam: { type: 'podwire-ipam', subnet: '10.244.1.0/24', dataDir: state } },
      },
      {
        bin: join(REF_PLUGINS, 'bridge'),
        path: `${bin}:${REF_PLUGINS}`,
        conf: {
          cniVersion: '1.0.0',
          name: 'ref',
          type: 'bridge',
          bridge: 'cni1',
          isGateway: true,
          ipam: { type: 'podwire-ipam', subnet: '10.244.2.0/24', dataDir: state },
        },
      },
    ];

    let installs = 0;
    let done = false;
    const upgrades = (async () => {
      while (!done) {
        await install('--bin-dir', bin);
        installs++;
      }
    })();
    const failures: string[] = [];
    let cycles = 0;
    // Each pod is added and deleted over and over, alternately on both networks, until several
    // installs have landed in the middle of them (and at least 40 cycles have run).
    const worker = async (ns: string, w: number) => {
      for (let i = 0; (installs < 5 || cycles < 40) && i < 400; i++) {
        const net = nets[(i + w) % 2]!;
        const call = { containerID: `c${w}`, netns: nsPath(ns), ifname: 'eth0', path: net.path };
        const add = await cni(node, { ...call, command: 'ADD' }, net.conf, net.bin);
        if (add.code !== 0) failures.push(`ADD ${net.conf.name}: ${add.stdout}${add.stderr}`);
        const del = await cni(node, { ...call, command: 'DEL' }, net.conf, net.bin);
        if (del.code !== 0) failures.push(`DEL ${net.conf.name}: ${del.stdout}${del.stderr}`);
        cycles++;
      }
    };
    try {
      await Promise.all(pods.map(worker));
    } finally {
      done = true;
      await upgrades;
    }

    expect(failures).toEqual([]);
    expect(installs).toBeGreaterThanOrEqual(5);
    expect(readdirSync(bin).sort()).toEqual(['podwire', 'podwire-ipam']);
    for (const net of ['pw', 'ref']) {
      const dir = join(state, net);
      const held = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d/.test(f)) : [];
      expect(held, net).toEqual([]);
    }
    expect(linkNames(node).filter((l) => l.startsWith('veth'))).toEqual([]);
    for (const p of pods) expect(linkNames(p)).toEqual(['lo']);
  }, 120_000);
});
