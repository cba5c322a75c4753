// @ts-check
// Installs what podwire's build, tests and lab need on a fresh Debian machine (as root), then builds.
// Idempotent and quick when everything is already there.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// iproute2: ip, bridge; iptables and nftables: the two firewall backends; util-linux: nsenter, flock; busybox-static: ping inside test namespaces;
// iputils-ping: ping with Don't Fragment (-M do) for the lab's MTU proof; kmod: modprobe br_netfilter; procps: sysctl;
// ethtool: node up turns TX checksum offload off on the VXLAN device;
// containernetworking-plugins: the reference bridge/host-local/portmap for tests and the benchmark;
// golang-go + golang-github-appc-cni-dev: libcni (what containerd and CRI-O use), built offline by a test;
// podman + runc + catatonit (its pause image) and containerd: real runtimes driving podwire in tests;
// shellcheck + ruby + vagrant: static checks of the Vagrant lab (shellcheck, ruby -c, vagrant validate),
// which cannot boot here;
// curl: the agent's /healthz, /readyz and /metrics read from inside a lab node;
// chromium + fonts-dejavu-core: a test renders `podwire diagram`'s SVG headless and checks what it shows;
// iperf3: the data-path benchmark's throughput (npm run bench; its latency is scripts/rr.mjs);
// qemu-user-static + libc6-arm64-cross: the arm64 binary run under user-mode emulation (its libc from the
// cross package), and the x86-64 one on a CPU model without AVX2 (test/integration/arch.test.ts);
// kubernetes-client where no kubectl is on PATH.
// ulogd2 + ulogd2-json: the reader of the log group every drop goes to (podwire drops, the agent).
// `setup.mjs --lab` installs only what the lab needs (npm run lab), not the test-only runtimes and tools.
const LAB_DEBS = [
  'iproute2',
  'iptables',
  'nftables',
  'util-linux',
  'kmod',
  'procps',
  'ethtool',
  'busybox-static',
  'iputils-ping',
  'containernetworking-plugins',
  'ulogd2',
  'ulogd2-json',
];
const TEST_DEBS = [
  'curl',
  'golang-go',
  'golang-github-appc-cni-dev',
  'podman',
  'runc',
  'catatonit',
  'containerd',
  'shellcheck',
  'ruby',
  'vagrant',
  'chromium',
  'fonts-dejavu-core',
  'iperf3',
  'python3',
  'qemu-user-static',
  'libc6-arm64-cross',
];
// kubectl (a real client for the fake API server's test): the one on PATH, else Debian's kubernetes-client.
const hasKubectl = spawnSync('sh', ['-c', 'command -v kubectl'], { stdio: 'ignore' }).status === 0;
if (!hasKubectl) TEST_DEBS.push('kubernetes-client');
const DEBS = process.argv.includes('--lab') ? LAB_DEBS : [...LAB_DEBS, ...TEST_DEBS];
/** @param {string} cmd @param {string[]} args @param {import('node:child_process').ExecFileSyncOptions} [opts] */
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
const say = (/** @type {string} */ m) => process.stderr.write(`setup: ${m}\n`);

const missing = DEBS.filter(
  (p) => spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout?.includes('install ok installed') !== true,
);
if (missing.length) {
  if (process.getuid?.() !== 0) throw new Error(`missing Debian packages ${missing.join(' ')}; run as root or install them`);
  say(`installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  sh('apt-get', ['update', '-q'], { env });
  sh('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env });
}

const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  say('npm ci');
  sh('npm', ['ci', '--no-audit', '--no-fund']);
}

// The tests run every architecture's binary (arm64 under emulation); the lab needs only this machine's.
if (!process.argv.includes('--no-build')) sh('node', ['scripts/build.mjs', ...(process.argv.includes('--lab') ? [] : ['--all'])]);
