// @ts-check
// Run as `unshare -m -n node private-node.mjs BIN DIR`: a node of its own, for podwire's explore commands
// outside the lab. The new network namespace plays the node's root namespace (nothing of the host's is
// touched) and a private tmpfs on /run/netns holds its pods' namespaces; both vanish when this process
// exits. Two pods are added with the plugin, then status, path and diagram run with --no-lab; the results
// are printed as one JSON object.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [bin, dir] = process.argv.slice(2);
/** @param {string} cmd @param {string[]} args @param {import('node:child_process').ExecFileSyncOptions} [opts] */
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', ...opts });
sh('mount', ['--make-rprivate', '/']);
sh('mkdir', ['-p', '/run/netns']);
sh('mount', ['-t', 'tmpfs', 'tmpfs', '/run/netns']);
sh('ip', ['link', 'set', 'lo', 'up']);
const plugin = {
  type: 'podwire',
  logFile: join(dir, 'podwire.log'),
  ipam: { type: 'podwire-ipam', subnet: '10.77.1.0/24', dataDir: join(dir, 'ipam') },
};
const conflist = join(dir, 'node.conflist');
writeFileSync(conflist, JSON.stringify({ cniVersion: '1.0.0', name: 'nodenet', plugins: [plugin] }));
for (const p of ['pod-a', 'pod-b']) {
  sh('ip', ['netns', 'add', p]);
  sh(bin, [], {
    input: JSON.stringify({ cniVersion: '1.0.0', name: 'nodenet', ...plugin }),
    env: {
      PATH: process.env.PATH,
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: `ctr-${p}`,
      CNI_NETNS: `/run/netns/${p}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
    },
  });
}
const cli = (/** @type {string[]} */ ...args) => {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const svg = join(dir, 'node.svg');
const status = cli('status', '--conflist', conflist, '--json');
const path = cli('path', '10.77.1.2', '10.77.1.3', '--no-lab', '--json');
const diagram = cli('diagram', '--no-lab', '-o', svg);
process.stdout.write(JSON.stringify({ status, path, diagram, svg: diagram.code === 0 ? readFileSync(svg, 'utf8') : '' }));
