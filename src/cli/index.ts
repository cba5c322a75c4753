// The podwire command line (human use). Output goes to stdout/stderr here: this is not the plugin path.
import yargs, { type CommandModule } from 'yargs';
import { SUPPORTED_VERSIONS } from '../cni/version.js';
import { VERSION } from '../version.js';
import { LANGS, pickLang, setLang, t } from '../i18n/index.js';
import { labCommand, labDownCommand } from './lab.js';
import { agentCommand } from './agent.js';
import { diagramCommand, doctorCommand, pathCommand, statusCommand } from './explore.js';
import { installCommand } from './install.js';
import { nodeCommand, peersCommand } from './node.js';
import { netpolCommand } from './netpol.js';

const cniVersionsCommand: CommandModule<object, { json: boolean }> = {
  command: 'cni-versions',
  describe: 'print the CNI spec versions this plugin speaks',
  builder: (y) => y.option('json', { type: 'boolean', default: false, describe: 'print a JSON array' }),
  handler: (a) => {
    process.stdout.write(a.json ? JSON.stringify(SUPPORTED_VERSIONS) + '\n' : SUPPORTED_VERSIONS.join('\n') + '\n');
  },
};

const COMMANDS: CommandModule<any, any>[] = [
  cniVersionsCommand,
  installCommand,
  nodeCommand,
  peersCommand,
  agentCommand,
  netpolCommand,
  statusCommand,
  doctorCommand,
  pathCommand,
  diagramCommand,
  labCommand,
  labDownCommand,
];

/** Where to look after a usage mistake: the help of the command that was given, if it exists. */
function helpFor(argv: string[]): string {
  const known = new Set(COMMANDS.map((c) => String(c.command).split(' ')[0]));
  return argv[0] && known.has(argv[0]) ? `podwire ${argv[0]} --help` : 'podwire --help';
}

export async function cli(argv: string[]): Promise<number> {
  // The learner's language first: the commands' help is written in it.
  const at = argv.findIndex((a) => a === '--lang' || a.startsWith('--lang='));
  setLang(pickLang(at < 0 ? undefined : argv[at]!.includes('=') ? argv[at]!.split('=')[1] : argv[at + 1]));
  let code = 0;
  let y = yargs(argv)
    .scriptName('podwire')
    .usage(
      'podwire: a CNI plugin + IPAM for a bridge/VXLAN pod network.\n\n' +
        'As a CNI plugin it is executed by the container runtime with CNI_COMMAND set;\n' +
        'without CNI_COMMAND it is this command line.',
    );
  for (const c of COMMANDS) y = y.command(c);
  const parsing = y
    .completion('completion', 'print a bash/zsh completion script (e.g. podwire completion >> ~/.bashrc)')
    .option('lang', { choices: LANGS, describe: t('cli.lang'), global: true, type: 'string' })
    .demandCommand(1, 'give a command')
    .strict()
    .version(VERSION)
    .alias('h', 'help')
    // --help, --version and completion end here without process.exit(): main() sets the exit code.
    .exitProcess(false)
    .fail((msg, err) => {
      // A usage mistake gets one line saying what was wrong and where to look, not the whole help with
      // the error at its end. Throwing stops yargs here: without it, the command would still run.
      if (!msg) throw err;
      code = 1;
      process.stderr.write(`podwire: ${msg.replace(/\s*\n\s*/g, ' ')} (see ${helpFor(argv)})\n`);
      throw new Error(msg);
    });
  try {
    await parsing.parseAsync();
  } catch (e) {
    // A command that failed (yargs does not always pass a handler's error through fail()): its message, once.
    if (!code) process.stderr.write(`podwire: ${(e as Error)?.message ?? String(e)}\n`);
    code = 1;
  }
  return code || Number(process.exitCode ?? 0);
}
