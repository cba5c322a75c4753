// `podwire node up|down` and `podwire peers sync [--watch]`: the node agent's commands, for a cluster
// described by a file (JSON, see src/node/cluster.ts). Human output goes to stderr, --json to stdout.
import { t } from '../i18n/index.js';
import { hostname } from 'node:os';
import type { Argv, CommandModule } from 'yargs';
import { configurePinoLog } from './log.js';
import { peerLoop } from '../node/reconcile.js';
import { DEFAULT_SUBNET_FILE } from '../nodestate/subnet-file.js';
import { type NodeReport, nodeDown, nodeUp } from '../node/setup.js';
import { FileSource, readClusterFile } from '../node/source.js';
import { type SyncReport, syncPeers } from '../node/sync.js';

interface Common {
  cluster: string;
  node: string;
  'subnet-file': string;
  'log-file'?: string;
  json: boolean;
}

const say = (m: string) => process.stderr.write(`${m}\n`);

function common<T>(y: Argv<T>): Argv<T & Common> {
  return y
    .option('cluster', { type: 'string', demandOption: true, describe: 'cluster file (JSON: clusterCIDR, backend, nodes)' })
    .option('node', { type: 'string', default: hostname(), describe: "this node's name in the cluster file" })
    .option('subnet-file', { type: 'string', default: DEFAULT_SUBNET_FILE, describe: 'node subnet file the plugin reads' })
    .option('log-file', { type: 'string', describe: 'also log (JSON lines) to this file' })
    .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON on stdout' }) as Argv<T & Common>;
}

function setup(a: Common): void {
  if (a['log-file']) configurePinoLog(a['log-file'], 'info');
}

function printNode(a: Common, verb: string, r: NodeReport): void {
  if (a.json) process.stdout.write(JSON.stringify(r) + '\n');
  for (const w of r.warnings) say(`warning: ${w}`);
  for (const n of r.notes ?? []) say(`node ${a.node}: ${n}`);
  if (!r.changes.length) say(`node ${a.node} ${verb}: nothing to change`);
  for (const c of r.changes) say(`node ${a.node} ${verb}: ${c}`);
}

function printSync(a: Common, r: SyncReport): void {
  if (a.json) {
    const { peers, diff, ...rest } = r;
    process.stdout.write(
      JSON.stringify({ ...rest, peers: peers.map((p) => ({ name: p.node.name, mode: p.mode, family: p.family })), diff }) + '\n',
    );
  }
  for (const f of r.failures) say(`failed: ${f.command}: ${f.error}`);
  for (const c of r.diff.conflicts) say(`skipped: a route to ${c.dst} exists that podwire did not make; leaving it`);
  // Name the peers when there are few; count them by backend when there are many.
  const modes =
    r.peers.length <= 8
      ? r.peers.map((p) => `${p.node.name}:${p.mode}`).join(' ')
      : (['vxlan', 'host-gw'] as const).map((m) => `${m}: ${r.peers.filter((p) => p.mode === m).length}`).join(', ');
  say(`peers ${a.node}: ${r.peers.length} peer(s) [${modes}], ${r.changes} change(s), ${r.processes} process(es), ${r.ms.toFixed(1)} ms`);
}

export const nodeCommand: CommandModule = {
  command: 'node <action>',
  get describe() {
    return t('cli.node');
  },
  builder: (y) =>
    common(y.positional('action', { choices: ['up', 'down'] as const, describe: 'up: prepare the node; down: undo it' }))
      .example('$0 node up --cluster cluster.json --node node1', '')
      .strict(),
  handler: async (argv) => {
    const a = argv as unknown as Common & { action: 'up' | 'down' };
    setup(a);
    const c = readClusterFile(a.cluster);
    const up = a.action === 'up';
    printNode(a, up ? 'up' : 'down', await (up ? nodeUp : nodeDown)(c, a.node, a['subnet-file']));
  },
};

export const peersCommand: CommandModule = {
  command: 'peers sync',
  get describe() {
    return t('cli.peers');
  },
  builder: (y) =>
    common(y)
      .option('watch', { type: 'boolean', default: false, describe: 'keep running: re-sync when the file changes' })
      .option('resync', { type: 'number', default: 30, describe: 'with --watch: seconds between syncs anyway' })
      .strict(),
  handler: async (argv) => {
    const a = argv as unknown as Common & { watch: boolean; resync: number };
    setup(a);
    if (!a.watch) {
      const r = await syncPeers(readClusterFile(a.cluster), a.node);
      printSync(a, r);
      if (r.failures.length) process.exitCode = 1;
      return;
    }
    const stop = new AbortController();
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
    await peerLoop(new FileSource(a.cluster), {
      node: a.node,
      resync: a.resync,
      signal: stop.signal,
      onSync: (r) => (r.changes || r.failures.length ? printSync(a, r) : undefined),
      onError: (e) => say(`sync failed: ${e.message}`),
    });
  },
};
