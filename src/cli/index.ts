// The podwire command line (human use). Output goes to stdout/stderr here: this is not the plugin path.
import yargs from 'yargs';
import { SUPPORTED_VERSIONS } from '../cni/version.js';
import { VERSION } from '../version.js';
import { labCommand, labDownCommand } from './lab.js';
import { agentCommand } from './agent.js';
import { diagramCommand, pathCommand, statusCommand } from './explore.js';
import { installCommand } from './install.js';
import { nodeCommand, peersCommand } from './node.js';

export async function cli(argv: string[]): Promise<number> {
  let code = 0;
  await yargs(argv)
    .scriptName('podwire')
    .usage(
      'podwire: a CNI plugin + IPAM for a bridge/VXLAN pod network.\n\n' +
        'As a CNI plugin it is executed by the container runtime with CNI_COMMAND set;\n' +
        'without CNI_COMMAND it is this command line.',
    )
    .command(
      'cni-versions',
      'print the CNI spec versions this plugin speaks',
      () => {},
      () => {
        process.stdout.write(SUPPORTED_VERSIONS.join('\n') + '\n');
      },
    )
    .command(installCommand)
    .command(nodeCommand)
    .command(peersCommand)
    .command(agentCommand)
    .command(statusCommand)
    .command(pathCommand)
    .command(diagramCommand)
    .command(labCommand)
    .command(labDownCommand)
    .demandCommand(1, 'give a command (see --help)')
    .strict()
    .version(VERSION)
    .alias('h', 'help')
    .fail((msg, err, y) => {
      // Usage mistakes get the help text; failures of a command get their message, once.
      if (msg) y.showHelp();
      process.stderr.write(msg ? `\n${msg}\n` : `podwire: ${err?.message}\n`);
      code = 1;
    })
    .parseAsync()
    .catch(() => {});
  return code || Number(process.exitCode ?? 0);
}
