// `podwire status`, `podwire path` and `podwire diagram`: the network explained from the kernel's live state
// (src/explore/). Human output on stdout (it is the answer), --json for scripts.
import { type MessageId, lang, t } from '../i18n/index.js';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Argv, CommandModule } from 'yargs';
import { diagram } from '../explore/diagram.js';
import { findPath, pathJson, renderPath } from '../explore/path.js';
import { atomicWrite } from '../runtime/files.js';
import { type PodwireConf, findPodwireConf, nodeStatus, podwireConf, renderStatus } from '../explore/status.js';
import { type DoctorOptions, applySafeFixes, doctor, doctorJson, renderDoctor } from '../explore/doctor.js';
import { VERSION } from '../runtime/version.js';
import { type Scope, readWorld, thisNode } from '../explore/world.js';
import { LAB_PREFIX, labNamespaces, labScope } from '../lab/netns.js';
import { podwireBinary } from '../runtime/run.js';
import { labNodeFiles } from '../lab/lab.js';
import { readClusterFile } from '../node/source.js';

interface StatusArgs {
  conflist?: string;
  cluster?: string;
  node: string;
  json: boolean;
  lab?: string;
}

/** What status and doctor look at: a network config, a cluster file, this node's name (or a lab node), JSON out. */
function nodeOptions<T>(y: Argv<T>, cluster: MessageId) {
  return y
    .option('conflist', { type: 'string', describe: t('opt.conflist') })
    .option('cluster', { type: 'string', describe: t('opt.cluster', { use: t(cluster) }) })
    .option('node', { type: 'string', default: hostname(), describe: t('opt.node') })
    .option('lab', { type: 'string', describe: t('opt.labNode') })
    .option('json', { type: 'boolean', default: false, describe: t('opt.json') });
}

/** Runs this command again inside a lab node's namespace, with that node's files. */
function inLabNode(node: string, args: string[]): number {
  const f = labNodeFiles(node);
  if (!existsSync(f.conflistFile)) throw new Error(t('err.noLabNode', { node }));
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      f.ns,
      podwireBinary(),
      ...args,
      '--conflist',
      f.conflistFile,
      '--cluster',
      f.clusterFile,
      '--node',
      node,
      '--lang',
      lang(),
    ],
    { stdio: 'inherit' },
  );
  return r.status ?? 1;
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status',
  get describe() {
    return t('cli.status');
  },
  builder: (y) =>
    nodeOptions(y, 'opt.clusterStatus')
      .example('$0 status --lab node1', t('ex.statusLab'))
      .example('$0 status --cluster /etc/podwire/cluster.json --json', ''),
  handler: async (a) => {
    if (a.lab) {
      process.exitCode = inLabNode(a.lab, ['status', ...(a.json ? ['--json'] : [])]);
      return;
    }
    const conf = a.conflist ? podwireConf(a.conflist) : findPodwireConf();
    if (!conf) throw new Error(`${a.conflist} has no podwire plugin`);
    const st = await nodeStatus({ conf, cluster: a.cluster ? readClusterFile(a.cluster) : undefined, node: a.node });
    process.stdout.write(a.json ? JSON.stringify(st, null, 2) + '\n' : renderStatus(st));
    // Like a health check: scripts can act on it without parsing.
    process.exitCode = st.problems.length ? 1 : 0;
  },
};

interface PathArgs {
  src: string;
  dst: string;
  proto: string;
  lab?: boolean;
  json: boolean;
  spoof?: string;
}

/** The lab when one is up (unless --no-lab), else this node and the pods in /run/netns. */
/** Whether to look at the lab (--lab, or by default when one is up) or at this node (--no-lab). */
const useLab = (flag: boolean | undefined): boolean => flag ?? labNamespaces().length > 0;
const scopeOf = (lab: boolean): Scope => (lab ? labScope() : thisNode());

export const pathCommand: CommandModule<object, PathArgs> = {
  command: 'path <src> <dst>',
  get describe() {
    return t('cli.path');
  },
  builder: (y) =>
    y
      .positional('src', { type: 'string', demandOption: true, describe: t('opt.src') })
      .positional('dst', { type: 'string', demandOption: true, describe: t('opt.dst') })
      .option('proto', { choices: ['tcp', 'udp', 'icmp'], default: 'tcp', describe: t('opt.proto') })
      .option('lab', { type: 'boolean', describe: t('opt.labPath') })
      .option('json', { type: 'boolean', default: false, describe: t('opt.json') })
      .option('spoof', { type: 'string', describe: t('opt.spoof') })
      .example('$0 path 10.244.1.2 10.96.0.11:80', t('ex.pathService'))
      .example('$0 path 10.244.1.2 10.244.2.3 --spoof 10.244.1.3', t('ex.pathSpoof'))
      .example('$0 path 192.168.50.250 192.168.50.12:30080', t('ex.pathNodePort')),
  handler: async (a) => {
    const p = await findPath(await readWorld(scopeOf(useLab(a.lab))), a.src, a.dst, a.proto, a.spoof);
    process.stdout.write(a.json ? JSON.stringify(pathJson(p), null, 2) + '\n' : renderPath(p));
    process.exitCode = p.delivered ? 0 : 1;
  },
};

interface DiagramArgs {
  out?: string;
  lab?: boolean;
}

export const diagramCommand: CommandModule<object, DiagramArgs> = {
  command: 'diagram',
  get describe() {
    return t('cli.diagram');
  },
  builder: (y) =>
    y
      .option('out', { alias: 'o', type: 'string', describe: t('opt.out') })
      .option('lab', { type: 'boolean', describe: t('opt.labDiagram') })
      .example('$0 diagram -o lab.svg', ''),
  handler: async (a) => {
    const lab = useLab(a.lab);
    const svg = await diagram(scopeOf(lab), lab ? t('diagram.titleLab') : t('diagram.titleNode', { node: hostname() }));
    if (!a.out) process.stdout.write(svg);
    else {
      atomicWrite(a.out, svg);
      process.stderr.write(t('cli.wrote', { file: a.out }) + '\n');
    }
  },
};

interface DoctorArgs {
  conflist?: string;
  cluster?: string;
  node: string;
  lab?: string;
  'lab-prefix'?: string;
  'cni-bin-dir': string;
  json: boolean;
  fix: boolean;
  probe: boolean;
}

export const doctorCommand: CommandModule<object, DoctorArgs> = {
  command: 'doctor',
  get describe() {
    return t('cli.doctor');
  },
  builder: (y) =>
    nodeOptions(y, 'opt.clusterDoctor')
      .option('cni-bin-dir', { type: 'string', default: '/opt/cni/bin', describe: t('opt.cniBinDir') })
      .option('lab-prefix', { type: 'string', hidden: true })
      .option('fix', { type: 'boolean', default: false, describe: t('opt.fix') })
      .option('probe', { type: 'boolean', default: true, describe: t('opt.probe') })
      .example('$0 doctor --lab node1', t('ex.doctorLab'))
      .example('$0 doctor --cluster /etc/podwire/cluster.json --fix', ''),
  handler: async (a) => {
    const self = podwireBinary();
    if (a.lab) {
      const flags = [...(a.json ? ['--json'] : []), ...(a.fix ? ['--fix'] : []), ...(a.probe ? [] : ['--no-probe'])];
      const binDir = self.slice(0, self.lastIndexOf('/'));
      process.exitCode = inLabNode(a.lab, ['doctor', ...flags, '--cni-bin-dir', binDir, '--lab-prefix', LAB_PREFIX]);
      return;
    }
    let conf: PodwireConf | undefined;
    let confError: string | undefined;
    try {
      conf = a.conflist ? podwireConf(a.conflist) : findPodwireConf();
      if (!conf) confError = `${a.conflist} has no podwire plugin`;
    } catch (e) {
      confError = (e as Error).message;
    }
    // In a lab node, a fix is run from the host: `ip netns exec pwlab-NODE ...`.
    const prefix = a['lab-prefix'];
    const where = (node?: string): string[] => (prefix ? ['ip', 'netns', 'exec', `${prefix}${node ?? a.node}`] : []);
    const opts: DoctorOptions = {
      ...(conf ? { conf } : {}),
      ...(confError ? { confError } : {}),
      ...(a.cluster ? { cluster: readClusterFile(a.cluster), clusterFile: a.cluster } : {}),
      node: a.node,
      binDir: a['cni-bin-dir'],
      self,
      version: VERSION,
      where,
      probe: a.probe,
    };
    let report = await doctor(opts);
    let fixed: Awaited<ReturnType<typeof applySafeFixes>> | undefined;
    if (a.fix && report.problems) {
      // The fixes are commands for this node as the user sees it: from the host in a lab (ip netns exec).
      fixed = await applySafeFixes(report);
      report = await doctor(opts);
    }
    if (a.json) process.stdout.write(JSON.stringify({ ...doctorJson(report), ...(fixed ? { fixed } : {}) }, null, 2) + '\n');
    else {
      for (const f of fixed ?? []) process.stdout.write(t(f.ok ? 'cli.fixed' : 'cli.fixFailed', { line: f.line, output: f.output }) + '\n');
      if (fixed) process.stdout.write('\n');
      process.stdout.write(renderDoctor(report));
    }
    process.exitCode = report.problems ? 1 : 0;
  },
};
