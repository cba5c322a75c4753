// `podwire lab` and `podwire lab-down`: the command-line face of the multi-node lab (src/lab/).
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { t } from '../i18n/index.js';
import { runLab } from '../lab/index.js';
import { labDown } from '../lab/netns.js';
import { LAB_FAMILIES, type LabFamily, PROXY_MODES, type ProxyMode } from '../lab/lab.js';
import { FIREWALL_SETTINGS, type FirewallSetting } from '../firewall/choose.js';
import { BACKENDS, type Backend } from '../node/cluster.js';

interface LabArgs {
  nodes: number;
  'pods-per-node': number;
  mode: Backend;
  keep: boolean;
  trace: boolean;
  diagram?: string;
  json: boolean;
  family: LabFamily;
  proxy?: ProxyMode;
  bin?: string;
  firewall: FirewallSetting;
  policy?: string;
  web?: string;
}

export const labCommand: CommandModule<object, LabArgs> = {
  command: 'lab',
  get describe() {
    return t('cli.lab');
  },
  builder: (y) =>
    y
      .option('nodes', { type: 'number', default: 3, describe: t('opt.nodes') })
      .option('pods-per-node', { type: 'number', default: 2, describe: t('opt.podsPerNode') })
      .option('mode', { choices: BACKENDS, default: 'vxlan' as Backend, describe: t('opt.mode') })
      .option('keep', { type: 'boolean', default: false, describe: t('opt.keep') })
      .option('diagram', { type: 'string', describe: t('opt.diagram') })
      .option('json', { type: 'boolean', default: false, describe: t('opt.labJson') })
      .option('family', {
        choices: LAB_FAMILIES,
        default: 'ipv4' as LabFamily,
        describe: t('opt.family'),
      })
      .option('proxy', {
        choices: PROXY_MODES,
        describe: t('opt.proxy'),
      })
      .option('bin', {
        type: 'string',
        describe: t('opt.bin'),
      })
      .option('firewall', {
        choices: FIREWALL_SETTINGS,
        default: 'auto' as FirewallSetting,
        describe: t('opt.firewall'),
      })
      .option('policy', {
        type: 'string',
        describe: t('opt.policy'),
      })
      .option('trace', {
        type: 'boolean',
        default: true,
        describe: t('opt.trace'),
      })
      .option('web', {
        type: 'string',
        describe: t('opt.labWeb'),
        coerce: (v: unknown) => (v === '' || v === true ? '127.0.0.1:9480' : String(v)),
      }),
  handler: async (a) => {
    // npm runs scripts in the package's folder; INIT_CWD is where `npm run lab -- --diagram FILE` was typed.
    const diagram = a.diagram && resolve(process.env.INIT_CWD ?? '.', a.diagram);
    process.exitCode = await runLab({
      nodes: a.nodes,
      podsPerNode: a['pods-per-node'],
      mode: a.mode,
      keep: a.keep || a.web !== undefined,
      trace: a.trace,
      diagram,
      json: a.json,
      family: a.family,
      proxy: a.proxy,
      firewall: a.firewall,
      policy: a.policy && resolve(process.env.INIT_CWD ?? '.', a.policy),
      ...(a.bin ? { bin: resolve(process.env.INIT_CWD ?? '.', a.bin) } : {}),
    });
    // --web: the lab stays up, and its live page is served until Ctrl-C (the lab is kept after it).
    if (a.web !== undefined && process.exitCode === 0) {
      const { webCommand } = await import('./web.js');
      await (webCommand.handler as (x: object) => Promise<void>)({ addr: a.web, lab: true, send: true });
    }
  },
};

export const labDownCommand: CommandModule = {
  command: 'lab-down',
  get describe() {
    return t('cli.labDown');
  },
  handler: () => {
    labDown();
    process.stderr.write('lab: lab removed\n');
  },
};
