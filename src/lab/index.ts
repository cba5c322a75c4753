// `podwire lab`: a node as a network namespace, pods as namespaces wired by executing the real podwire
// binary exactly as a runtime does (conflist from cni-conf/), then proof that the pod network works:
// every pod pings every other pod and its gateway. Everything lives in namespaces named pwlab-*; nothing
// is sent outside them, and everything is removed at the end (unless --keep; `podwire lab down`).
import { existsSync, mkdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import conflist from '../../cni-conf/10-podwire.conflist';
import { table } from '../cli/table.js';
import { DiskStore } from '../ipam/disk-store.js';
import { LAB_PREFIX, LAB_STATE, ip, labDown, labNamespaces, ping } from './netns.js';
import { type Conflist, type Runner, addList, delList } from './runtime.js';

const REF_PLUGINS = '/usr/lib/cni';

const say = (m: string) => process.stderr.write(`lab: ${m}\n`);

/** The podwire binary to execute as the plugin: this one, or dist/podwire beside a node-run bundle. */
export function podwireBinary(): string {
  return /^(node|bun)$/.test(basename(process.execPath)) ? resolve(dirname(process.argv[1] ?? '.'), 'podwire') : process.execPath;
}

interface Pod {
  name: string;
  ns: string;
  node: string;
  ip: string;
  veth: string;
  result: unknown;
}

export async function runLab(opts: { podsPerNode: number; keep: boolean }): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('the lab needs root: it creates network namespaces');
  if (labNamespaces().length) {
    say('removing a previous lab');
    labDown();
  }
  const bin = podwireBinary();
  if (!existsSync(bin)) throw new Error(`${bin} not found: run npm run build`);
  const netns = (name: string) => {
    ip('netns', 'add', name); // every lab namespace is named LAB_PREFIX*: labDown() finds them all
    ip('-n', name, 'link', 'set', 'lo', 'up');
    return name;
  };
  const pods: Pod[] = [];
  let failures = 0;
  try {
    const node = { name: 'node1', ns: netns(`${LAB_PREFIX}node1`), podCIDR: '10.244.1.0/24', gateway: '10.244.1.1' };
    const state = join(LAB_STATE, node.name);
    mkdirSync(state, { recursive: true });
    const list: Conflist = structuredClone(conflist);
    for (const p of list.plugins) {
      if (p.type === 'podwire') Object.assign(p, { logFile: join(state, 'podwire.log'), ipam: { ...p.ipam, subnet: node.podCIDR, dataDir: join(state, 'ipam') } });
    }
    const runner: Runner = { node: node.ns, podwire: bin, cniPath: [REF_PLUGINS] };
    process.stdout.write(`${table(['node', 'namespace', 'podCIDR (its slice of the cluster network)', 'gateway on cni0'], [[node.name, node.ns, node.podCIDR, node.gateway]])}\n\n`);

    for (let i = 1; i <= opts.podsPerNode; i++) {
      const name = `pod${i}`;
      const ns = netns(`${LAB_PREFIX}n1-${name}`);
      say(`ADD ${name}: executing ${bin} in ${node.ns} with CNI_COMMAND=ADD CNI_NETNS=/run/netns/${ns}`);
      const r = await addList(runner, list, { containerID: `lab-${node.name}-${name}`, netns: `/run/netns/${ns}` });
      if (r.code !== 0) throw new Error(`ADD ${name} failed: ${r.stdout || r.stderr}`);
      const hostIf = r.json.interfaces.find((x: { name: string }) => x.name.startsWith('veth'));
      pods.push({ name, ns, node: node.name, ip: r.json.ips[0].address.split('/')[0], veth: hostIf?.name ?? '?', result: r.json });
    }
    process.stdout.write(`${table(['pod', 'node', 'Pod IP', 'host veth (on cni0)', 'pod interface'], pods.map((p) => [p.name, p.node, p.ip, p.veth, 'eth0']))}\n\n`);

    say('proving: every pod pings every other pod and its gateway');
    const rows: string[][] = [];
    for (const from of pods) {
      const targets = [...pods.filter((p) => p !== from).map((p) => [p.name, p.ip] as const), ['gateway', node.gateway] as const];
      for (const [name, addr] of targets) {
        const ok = ping(from.ns, addr);
        if (!ok) failures++;
        rows.push([from.name, `${name} (${addr})`, ok ? 'ok' : 'FAILED']);
      }
    }
    process.stdout.write(`${table(['from', 'to', 'ping'], rows)}\n\n`);

    if (!opts.keep) {
      for (const p of pods) {
        say(`DEL ${p.name}`);
        const replies = await delList(runner, list, { containerID: `lab-${node.name}-${p.name}`, netns: `/run/netns/${p.ns}` }, p.result);
        if (replies.some((x) => x.code !== 0)) throw new Error(`DEL ${p.name} failed: ${replies.map((x) => x.stdout).join(' ')}`);
      }
      const left = [...DiskStore.forNetwork(join(state, 'ipam'), list.name).list().keys()];
      if (left.length) throw new Error(`addresses left reserved after DEL: ${left.join(', ')}`);
      say('every pod deleted, no address left reserved');
    }
  } finally {
    if (!opts.keep) {
      labDown();
      say('lab removed');
    } else {
      say('lab kept: explore with `ip netns`; remove it with `npm run lab:down`');
    }
  }
  process.stdout.write(failures ? `${failures} ping(s) FAILED\n` : 'pod network works: all pings answered\n');
  return failures ? 1 : 0;
}

interface LabArgs {
  'pods-per-node': number;
  keep: boolean;
}

export const labCommand: CommandModule<object, LabArgs> = {
  command: 'lab',
  describe: 'build a pod network in network namespaces with the real plugin, prove it, remove it',
  builder: (y) =>
    y
      .option('pods-per-node', { type: 'number', default: 3, describe: 'pods on each node' })
      .option('keep', { type: 'boolean', default: false, describe: 'leave the lab up (remove it with `npm run lab:down`)' }),
  handler: async (a) => {
    process.exitCode = await runLab({ podsPerNode: a['pods-per-node'], keep: a.keep });
  },
};

export const labDownCommand: CommandModule = {
  command: 'lab-down',
  describe: 'remove a lab left up by --keep',
  handler: () => {
    labDown();
    say('lab removed');
  },
};
