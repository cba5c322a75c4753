// The podwire command line (human use). Output goes to stdout/stderr here: this is not the plugin path.
import yargs, { type CommandModule } from 'yargs';
import { SUPPORTED_VERSIONS } from '../cni/version.js';
import { VERSION } from '../runtime/version.js';
import { CATALOGUES, LANGS, type MessageId, lang, pickLang, setLang, t } from '../i18n/index.js';
import { labCommand, labDownCommand } from './lab.js';
import { agentCommand } from './agent.js';
import { diagramCommand, doctorCommand, pathCommand, statusCommand } from './explore.js';
import { installCommand } from './install.js';
import { nodeCommand, peersCommand } from './node.js';
import { netpolCommand } from './netpol.js';
import { dropsCommand } from './drops.js';
import { webCommand } from './web.js';

const cniVersionsCommand: CommandModule<object, { json: boolean }> = {
  command: 'cni-versions',
  get describe() {
    return t('cli.cniVersions');
  },
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
  dropsCommand,
  webCommand,
  labCommand,
  labDownCommand,
];

/** yargs' strings in the current language, as y18n takes them: plural keys as {one, other} (its types say string only). */
function yargsWords(): Record<string, string | { one: string; other: string }> {
  const plural = new Set([
    'Unknown argument: %s',
    'Missing required argument: %s',
    'Not enough non-option arguments: got %s, need at least %s',
  ]);
  return Object.fromEntries(
    Object.keys(CATALOGUES.en)
      .filter((id) => id.startsWith('yargs.'))
      .map((id) => {
        const key = id.slice('yargs.'.length);
        const text = t(id as MessageId);
        return [key, plural.has(key) ? { one: text, other: text } : text];
      }),
  );
}

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
  let y = yargs(argv).scriptName('podwire').usage(t('cli.usage'));
  // yargs' own words (Options:, [boolean], Show help ...) from our catalogue: its bundled locale files are
  // not in the single-file binary, and the choice must follow --lang, not only the locale yargs detects.
  y = lang() === 'zh' ? y.locale('zh_CN').updateLocale(yargsWords() as Record<string, string>) : y.locale('en');
  for (const c of COMMANDS) y = y.command(c);
  const parsing = y
    .completion('completion', t('cli.completion'))
    .option('lang', { choices: LANGS, describe: t('cli.lang'), global: true, type: 'string' })
    .demandCommand(1, t('cli.giveCommand'))
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
      process.stderr.write(`podwire: ${msg.replace(/\s*\n\s*/g, ' ')} (${t('cli.see', { help: helpFor(argv) })})\n`);
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
