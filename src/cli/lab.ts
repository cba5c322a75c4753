// `podwire lab` and `podwire lab-down`: the command-line face of the multi-node lab (src/lab/).
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { t } from '../i18n/index.js';
import { runLab } from '../lab/index.js';
import { labDown } from '../lab/netns.js';
import { LAB_FAMILIES, type LabFamily, PROXY_MODES, type ProxyMode } from '../lab/lab.js';
import { FIREWALL_SETTINGS, type FirewallSetting } from '../kernel/backend.js';
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
  proxy: ProxyMode;
  firewall: FirewallSetting;
  policy?: string;
}

export const labCommand: CommandModule<object, LabArgs> = {
  command: 'lab',
  get describe() {
    return t('cli.lab');
  },
  builder: (y) =>
    y
      .option('nodes', { type: 'number', default: 3, describe: 'number of nodes' })
      .option('pods-per-node', { type: 'number', default: 2, describe: 'pods on each node' })
      .option('mode', { choices: BACKENDS, default: 'vxlan' as Backend, describe: 'how pods on different nodes are connected' })
      .option('keep', { type: 'boolean', default: false, describe: 'leave the lab up (remove it with `npm run lab:down`)' })
      .option('diagram', { type: 'string', describe: 'write an SVG of the lab (from live state, all pods up) to this file' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON report on stdout instead of tables' })
      .option('family', {
        choices: LAB_FAMILIES,
        default: 'ipv4' as LabFamily,
        describe: 'address families of nodes, pods and Services: ipv4, ipv6, or dual (both)',
      })
      .option('proxy', {
        choices: PROXY_MODES,
        default: 'iptables' as ProxyMode,
        describe: "the Services' rules as kube-proxy writes them in this mode: iptables, or nftables (table ip kube-proxy)",
      })
      .option('firewall', {
        choices: FIREWALL_SETTINGS,
        default: 'auto' as FirewallSetting,
        describe: "where podwire's own rules go on the nodes: auto, nftables (table inet podwire) or iptables",
      })
      .option('policy', {
        type: 'string',
        describe:
          "NetworkPolicies (JSON) to enforce on upstream's model (namespaces x, y, z; pods a, b, c) and print the reachability tables of",
      })
      .option('trace', {
        type: 'boolean',
        default: true,
        describe: "show podwire's step-by-step trace of the first pod's ADD and DEL (--no-trace: don't)",
      }),
  handler: async (a) => {
    // npm runs scripts in the package's folder; INIT_CWD is where `npm run lab -- --diagram FILE` was typed.
    const diagram = a.diagram && resolve(process.env.INIT_CWD ?? '.', a.diagram);
    process.exitCode = await runLab({
      nodes: a.nodes,
      podsPerNode: a['pods-per-node'],
      mode: a.mode,
      keep: a.keep,
      trace: a.trace,
      diagram,
      json: a.json,
      family: a.family,
      proxy: a.proxy,
      firewall: a.firewall,
      policy: a.policy && resolve(process.env.INIT_CWD ?? '.', a.policy),
    });
  },
};

export const labDownCommand: CommandModule = {
  command: 'lab-down',
  describe: 'remove a lab left up by --keep',
  handler: () => {
    labDown();
    process.stderr.write('lab: lab removed\n');
  },
};
