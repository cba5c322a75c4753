// The Vagrant lab's provisioning, run here as Vagrant runs it — common.sh then control-plane.sh on cp,
// common.sh then worker.sh on a worker — against recorded stand-ins for every command that would change
// a machine or reach the network (apt-get, systemctl, kubeadm, curl, ctr, buildah, npm, ...). Every file
// the scripts write goes under a temp ROOT. What is asserted is what broke the lab before: workers join
// without a shared folder (the lab token, the control plane's address), wait for the control plane with a
// deadline, nothing is built on the host (the control plane builds and serves podwire's image: one pull per
// lab), and the versions and pause image kubeadm wants.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT as REPO } from '../helpers/netns.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const PAUSE = 'registry.k8s.io/pause:3.10.1';
const CONTAINERD_DEFAULT = `version = 3
[plugins]
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = 'registry.k8s.io/pause:3.10'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
    BinaryName = ''
`;

/** A machine: a temp ROOT, a bin dir of stand-ins that record their argv (and stdin where it matters) to a log. */
function machine(hostname: string, opts: { cpAnswers?: boolean; arch?: 'amd64' | 'arm64' } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'podwire-vagrant-prov-'));
  dirs.push(root);
  const bin = join(root, '.bin');
  const log = join(root, '.calls');
  mkdirSync(bin);
  for (const d of ['etc', 'tmp', 'usr/local', 'home/vagrant', 'etc/kubernetes']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'etc/fstab'), 'UUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n');
  const stub = (name: string, body = '') =>
    writeFileSync(join(bin, name), `#!/bin/bash\nprintf '%s\\n' "${name} $*" >> "${log}"\n${body}\n`, { mode: 0o755 });
  for (const c of [
    'swapoff',
    'modprobe',
    'sysctl',
    'apt-get',
    'apt-mark',
    'systemctl',
    'systemd-run',
    'ctr',
    'buildah',
    'npm',
    'chown',
    'gpg',
  ])
    stub(c);
  stub('hostname', `echo ${hostname}`);
  stub('dpkg', `echo ${opts.arch ?? 'amd64'}`); // dpkg --print-architecture
  stub('gpg', 'cat > /dev/null'); // reads the key from curl
  stub('tar');
  // node scripts/build.mjs: the build's product (a stand-in binary that records its own calls too).
  stub(
    'node',
    `mkdir -p dist && printf '#!/bin/bash\\nprintf "%%s\\\\n" "podwire $*" >> ${log}\\n' > dist/podwire && chmod 755 dist/podwire`,
  );
  // curl: a file for -o; the control plane answers (or never does, for the deadline); the apt key on stdout.
  stub(
    'curl',
    `out=""; prev=""; for a in "$@"; do [[ $prev == -o ]] && out=$a; prev=$a; done
     if [[ "$*" == *6443/readyz* || "$*" == *8088/podwire-image.tar* ]] && [[ -z "$out" || "$out" == /dev/null ]]; then exit ${opts.cpAnswers === false ? 7 : 0}; fi
     if [[ -n "$out" ]]; then echo data > "$out"; else echo key; fi`,
  );
  stub(
    'kubeadm',
    `case "$1 $2" in
       "config images") echo registry.k8s.io/kube-apiserver:v1.36.0; echo ${PAUSE}; echo registry.k8s.io/etcd:3.6.0-0 ;;
       "version -o") echo v1.36.0 ;;
       init*) mkdir -p "${root}/etc/kubernetes" && echo admin > "${root}/etc/kubernetes/admin.conf" ;;
     esac`,
  );
  stub('containerd', `cat <<'TOML'\n${CONTAINERD_DEFAULT}TOML`);
  stub('kubectl', `[[ "$*" == *"apply -f -"* ]] && cat > "${root}/.applied"; true`);
  // The repository as the Vagrantfile would have unpacked it (tar is a stand-in: put it there directly).
  const src = join(root, 'opt/podwire-src');
  mkdirSync(join(src, 'deploy'), { recursive: true });
  mkdirSync(join(src, 'scripts'), { recursive: true });
  for (const f of ['deploy/podwire.yaml', 'deploy/logrotate.d/podwire', 'deploy/Containerfile']) {
    mkdirSync(join(src, f, '..'), { recursive: true });
    writeFileSync(join(src, f), readFileSync(join(REPO, f)));
  }
  const run = (script: string, env: Record<string, string>) => {
    // In a mount namespace of its own with tmpfs over what a machine's provisioning writes: should a
    // script ever write outside ROOT, it lands there and vanishes, never on this machine.
    const guard = 'for d in /etc /opt /srv /home /usr/local /var/lib; do mount -t tmpfs podwire-test "$d"; done; exec bash "$0"';
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', guard, join(REPO, 'vagrant', script)], {
      env: { PATH: `${bin}:/usr/bin:/bin`, ROOT: root, HOME: root, ...env },
      encoding: 'utf8',
    });
    return { code: r.status, stderr: r.stderr };
  };
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
  return { root, run, calls };
}

const ENV = { CP_IP: '192.168.56.10', K8S_MINOR: 'v1.36', CONTAINERD_VERSION: '2.3.0', LAB_TOKEN: 'pwlab0.podwirelabtoken00' };
const index = (calls: string[], re: RegExp) => calls.findIndex((c) => re.test(c));

describe('Vagrant provisioning, in order, against recorded stand-ins', () => {
  it.each(['amd64', 'arm64'] as const)(
    'cp (%s): containerd 2.3 and Kubernetes 1.36, the pause image kubeadm wants, podwire built and served here, init with the lab token',
    (arch) => {
      const cp = machine('cp', { arch });
      const common = cp.run('common.sh', { ...ENV, NODE_IP: '192.168.56.10' });
      expect(common.code, common.stderr).toBe(0);
      const plane = cp.run('control-plane.sh', { ...ENV, NODE_IP: '192.168.56.10', POD_NETWORK_CIDR: '10.244.0.0/16' });
      expect(plane.code, plane.stderr).toBe(0);
      const calls = cp.calls();
      // Every download is the VM's architecture's: containerd, runc and Node.js (which names amd64 x64).
      expect(calls).toContainEqual(expect.stringContaining(`releases/download/v2.3.0/containerd-2.3.0-linux-${arch}.tar.gz`));
      expect(calls).toContainEqual(expect.stringContaining(`releases/download/v1.3.0/runc.${arch}`));
      expect(calls).toContainEqual(expect.stringContaining(`node-v22.12.0-linux-${arch === 'amd64' ? 'x64' : 'arm64'}.tar.xz`));
      expect(
        calls
          .filter((c) => /(amd64|x64|arm64)/.test(c) && c.startsWith('curl'))
          .every((c) => !c.includes(arch === 'amd64' ? 'arm64' : 'amd64')),
      ).toBe(true);
      expect(calls).toContainEqual(expect.stringContaining('https://pkgs.k8s.io/core:/stable:/v1.36/deb/Release.key'));
      const config = readFileSync(join(cp.root, 'etc/containerd/config.toml'), 'utf8');
      expect(config).toContain(`sandbox = '${PAUSE}'`);
      expect(config).toContain('SystemdCgroup = true');
      expect(readFileSync(join(cp.root, 'etc/default/kubelet'), 'utf8')).toBe('KUBELET_EXTRA_ARGS=--node-ip=192.168.56.10\n');
      expect(readFileSync(join(cp.root, 'etc/fstab'), 'utf8')).not.toContain('swap');
      expect(existsSync(join(cp.root, 'etc/logrotate.d/podwire'))).toBe(true);
      // Built in the VM, the image made once and served to the workers on the private address, before init.
      const build = index(calls, /^node scripts\/build\.mjs/);
      const serve = index(calls, /^systemd-run .*http\.server 8088 --bind 192\.168\.56\.10/);
      const init = index(calls, /^kubeadm init /);
      expect(index(calls, /^npm ci/)).toBeGreaterThanOrEqual(0);
      expect(calls.filter((c) => c.startsWith('buildah bud'))).toHaveLength(1);
      expect(build).toBeLessThan(serve);
      expect(serve).toBeLessThan(init);
      expect(calls[init]).toContain('--token=pwlab0.podwirelabtoken00');
      expect(calls[init]).toContain('--pod-network-cidr=10.244.0.0/16');
      expect(calls[init]).toContain('--apiserver-advertise-address=192.168.56.10');
      expect(readFileSync(join(cp.root, '.applied'), 'utf8')).toContain('--cluster-cidr=10.244.0.0/16');
    },
  );

  it('a worker: waits for the control plane, takes the image from it, joins with the token and its own name; builds and pulls nothing', () => {
    const w = machine('w1');
    expect(w.run('common.sh', { ...ENV, NODE_IP: '192.168.56.11' }).code).toBe(0);
    const r = w.run('worker.sh', ENV);
    expect(r.code, r.stderr).toBe(0);
    const calls = w.calls();
    const ready = index(calls, /^curl .*https:\/\/192\.168\.56\.10:6443\/readyz/);
    const image = index(calls, /^ctr -n k8s\.io images import .*podwire-image\.tar/);
    const joined = index(calls, /^kubeadm join /);
    expect(ready).toBeGreaterThanOrEqual(0);
    expect(ready).toBeLessThan(image);
    expect(image).toBeLessThan(joined);
    expect(calls[joined]).toBe(
      'kubeadm join 192.168.56.10:6443 --token pwlab0.podwirelabtoken00 --discovery-token-unsafe-skip-ca-verification --node-name w1',
    );
    expect(calls.some((c) => /^(buildah|npm|node) /.test(c))).toBe(false);
    expect(readFileSync(join(w.root, 'etc/default/kubelet'), 'utf8')).toBe('KUBELET_EXTRA_ARGS=--node-ip=192.168.56.11\n');
  });

  it('a worker whose control plane never comes gives up at its deadline, saying what to do, and joins nothing', () => {
    const w = machine('w2', { cpAnswers: false });
    const r = w.run('worker.sh', { ...ENV, WAIT_SECONDS: '0' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("w2: the control plane's API server (https://192.168.56.10:6443/readyz) did not answer within 0 s");
    expect(r.stderr).toContain("Run 'vagrant up cp'");
    expect(w.calls().some((c) => c.startsWith('kubeadm join'))).toBe(false);
  });
});
