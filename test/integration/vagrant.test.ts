// vagrant/: Vagrant cannot run on these machines, so its files are checked statically — shellcheck for
// the provisioning scripts and smoke test, `ruby -c` for the Vagrantfile — plus the facts that tie them
// to the rest of podwire (the pod network CIDR, kubelet's --node-ip, what the smoke test checks); `vagrant
// validate`; and the provisioning run in order against recorded stand-ins (test/unit/vagrant-provision.test.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/netns.js';

const dir = join(ROOT, 'vagrant');
const read = (f: string) => readFileSync(join(dir, f), 'utf8');
const scripts = readdirSync(dir).filter((f) => f.endsWith('.sh'));

describe('vagrant/', () => {
  it('has the provisioning scripts and the smoke test, and shellcheck finds nothing in them', () => {
    expect(scripts.sort()).toEqual(['common.sh', 'control-plane.sh', 'smoke.sh', 'worker.sh']);
    // Throws with shellcheck's report on any finding.
    execFileSync('shellcheck', ['--severity=style', '--shell=bash', ...scripts.map((s) => join(dir, s))], { encoding: 'utf8' });
  });

  it('the Vagrantfile is valid Ruby', () => {
    expect(execFileSync('ruby', ['-c', join(dir, 'Vagrantfile')], { encoding: 'utf8' })).toContain('Syntax OK');
  });

  it('defines one control plane and two workers on a private network, each provisioned, and `vagrant validate` passes', () => {
    const vf = read('Vagrantfile');
    const nodes = [...vf.matchAll(/"(\w+)" => "(192\.168\.\d+\.\d+)"/g)].map((m) => m[1]);
    expect(nodes).toEqual(['cp', 'w1', 'w2']);
    expect(vf).toMatch(/private_network", ip: ip/);
    for (const s of ['common.sh', 'control-plane.sh', 'worker.sh']) expect(vf).toContain(`path: "${s}"`);
    // No shared folder to send anything back through: the repository goes up as a tarball.
    expect(vf).toContain('synced_folder ".", "/vagrant", disabled: true');
    const tmp = mkdtempSync(join(tmpdir(), 'podwire-vagrant-'));
    try {
      // Everything Vagrant writes goes to the temp dir, and it asks no server anything (no version or box checks).
      const env = {
        ...process.env,
        PODWIRE_SRC_TARBALL: join(tmp, 'src.tar.gz'),
        VAGRANT_DOTFILE_PATH: join(tmp, 'dot'),
        VAGRANT_HOME: join(tmp, 'home'),
        VAGRANT_CHECKPOINT_DISABLE: '1',
        VAGRANT_BOX_UPDATE_CHECK_DISABLE: '1',
      };
      for (const arch of ['amd64', 'arm64']) {
        const out = execFileSync('vagrant', ['validate', '--ignore-provider'], {
          cwd: dir,
          env: { ...env, PODWIRE_ARCH: arch },
          encoding: 'utf8',
        });
        expect(out, arch).toContain('Vagrantfile validated successfully');
      }
      const files = execFileSync('tar', ['-tzf', join(tmp, 'src.tar.gz')], { encoding: 'utf8' }).split('\n');
      expect(files).toContain('vagrant/common.sh');
      expect(files).toContain('deploy/podwire.yaml');
      expect(files.filter((f) => /^(node_modules|dist|\.git)\//.test(f))).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("picks the box and providers by the host's architecture: Debian's box on x86-64, Bento's arm64 one with VMware or Parallels on arm64", () => {
    // The three lines that decide, evaluated by Ruby as Vagrant would (PODWIRE_ARCH stands for the host's CPU).
    const decide = read('Vagrantfile')
      .split('\n')
      .filter((l) => /^(HOST_ARCH|ARCH|BOX|PROVIDERS) = /.test(l));
    expect(decide).toHaveLength(4);
    const pick = (arch: string) =>
      execFileSync('ruby', ['-e', ['require "rbconfig"', ...decide, 'puts BOX, PROVIDERS.join(",")'].join('\n')], {
        env: { ...process.env, PODWIRE_ARCH: arch },
        encoding: 'utf8',
      }).split('\n');
    expect(pick('amd64').slice(0, 2)).toEqual(['debian/bookworm64', 'virtualbox,libvirt']);
    expect(pick('arm64').slice(0, 2)).toEqual(['bento/debian-12', 'vmware_desktop,parallels']);
    // With no override, this (x86-64) machine is an amd64 host.
    const host = execFileSync('ruby', ['-e', ['require "rbconfig"', ...decide, 'puts ARCH'].join('\n')], {
      env: { ...process.env, PODWIRE_ARCH: '' },
      encoding: 'utf8',
    });
    expect(host.trim()).toBe(process.arch === 'arm64' ? 'arm64' : 'amd64');
  });

  it('uses the pod network the DaemonSet is configured for, and gives kubelet the private-network address', () => {
    const cidr = /POD_NETWORK_CIDR = "([^"]+)"/.exec(read('Vagrantfile'))?.[1];
    const manifest = readFileSync(join(ROOT, 'deploy', 'podwire.yaml'), 'utf8');
    expect(manifest).toContain(`--cluster-cidr=${cidr}`);
    expect(read('control-plane.sh')).toContain('--pod-network-cidr="${POD_NETWORK_CIDR}"');
    expect(read('common.sh')).toContain('KUBELET_EXTRA_ARGS=--node-ip=${NODE_IP}');
  });

  it('the smoke test checks cross-node ping, Cluster IP, NodePort, hostPort, hairpin and DNS, and fails on any failure', () => {
    const smoke = read('smoke.sh');
    for (const what of ['pings pod', 'reaches Cluster IP', 'NodePort', 'hostPort', 'hairpin', 'DNS']) expect(smoke).toContain(what);
    expect(smoke).toMatch(/if \(\(fails\)\); then[\s\S]*exit 1/);
  });
});
