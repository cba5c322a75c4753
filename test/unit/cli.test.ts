// The command line's manners: a usage mistake is one line naming what was wrong and where to look, and
// nothing runs; completion works; commands that print tables can print JSON instead.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cli } from '../../src/cli/index.js';

/** Runs the CLI in-process, capturing what it writes. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  vi.spyOn(console, 'log').mockImplementation((...a) => void (out += a.join(' ') + '\n'));
  vi.spyOn(console, 'error').mockImplementation((...a) => void (err += a.join(' ') + '\n'));
  const code = await cli(argv);
  vi.restoreAllMocks();
  return { code, out, err };
}

afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

describe('in Chinese (--lang zh)', () => {
  it.each(['lab', 'status', 'path', 'doctor', 'diagram'])("podwire %s --help: yargs' words and every option's description", async (cmd) => {
    const r = await run(cmd, '--help', '--lang', 'zh');
    expect(r.out).toMatch(/^选项：$/m);
    // What is left once names are taken out (options, [types], example commands) is Chinese: no English phrase.
    const words = r.out
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('podwire '))
      .map((l) =>
        l
          .replace(/--?[\w-]+/g, '')
          .replace(/\[[^\]]*\]/g, '')
          .replace(/`[^`]*`/g, ''),
      )
      .join('\n');
    expect(words).not.toMatch(/\b[a-z]+ [a-z]+ [a-z]+ [a-z]+\b/i);
    expect(words).toMatch(/[\u4e00-\u9fff]/);
  });
  it('the top-level help names every command in Chinese', async () => {
    const r = await run('--help', '--lang', 'zh');
    const commands = r.out.slice(r.out.indexOf('命令：'), r.out.indexOf('选项：'));
    expect(
      commands
        .split('\n')
        .filter((l) => /^\s+podwire /.test(l))
        .every((l) => /[\u4e00-\u9fff]/.test(l)),
    ).toBe(true);
  });
  it('a usage mistake: the same one line, in Chinese', async () => {
    expect((await run('status', '--frob', '--lang', 'zh')).err).toBe('podwire: 无法识别的选项：frob (参见 podwire status --help)\n');
    expect((await run('--lang', 'zh')).err).toBe('podwire: 请给出一个命令 (参见 podwire --help)\n');
    expect((await run('frob')).err).toBe('podwire: Unknown argument: frob (see podwire --help)\n'); // and back to English
  });
});

describe('usage mistakes', () => {
  it.each([
    [['frob'], 'podwire: Unknown argument: frob (see podwire --help)\n'],
    [[], 'podwire: give a command (see podwire --help)\n'],
    [['status', '--frob'], 'podwire: Unknown argument: frob (see podwire status --help)\n'],
    [['path', '10.0.0.1'], 'podwire: Not enough non-option arguments: got 1, need at least 2 (see podwire path --help)\n'],
    [
      ['lab', '--mode', 'carrier-pigeon'],
      'podwire: Invalid values: Argument: mode, Given: "carrier-pigeon", Choices: "vxlan", "host-gw", "auto" (see podwire lab --help)\n',
    ],
  ])('podwire %j: one line on stderr, exit 1, nothing run', async (argv, line) => {
    const r = await run(...argv);
    expect(r.code).toBe(1);
    expect(r.err).toBe(line);
    expect(r.out).toBe('');
  });

  it('a command that fails prints its message once, not the help', async () => {
    const r = await run('install', '--bin-dir', '/nonexistent/bin'); // through node: refused before anything is written
    expect(r.code).toBe(1);
    expect(r.err).toBe('podwire: install copies the single-file binary: run it as dist/podwire, not through node\n');
  });

  it('the help is still there when asked for', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('podwire install');
    expect(r.out).toContain('podwire completion');
  });
});

describe('completion', () => {
  it('prints a bash completion script for podwire', async () => {
    const r = await run('completion');
    expect(r.code).toBe(0);
    expect(r.out).toContain('complete -o bashdefault -o default -F _podwire_yargs_completions podwire');
  });

  it('completes commands and their flags', async () => {
    const cmds = await run('--get-yargs-completions', 'podwire', '');
    expect(cmds.out.split('\n')).toEqual(expect.arrayContaining(['status', 'lab', 'install', 'agent', 'completion']));
    const flags = await run('--get-yargs-completions', 'podwire', 'lab', '--');
    expect(flags.out.split('\n')).toEqual(expect.arrayContaining(['--json', '--mode', '--nodes']));
  });
});

describe('--json', () => {
  it('cni-versions', async () => {
    const r = await run('cni-versions', '--json');
    expect(JSON.parse(r.out)).toContain('1.1.0');
  });

  it.each(['status', 'path', 'lab', 'node', 'peers'])('%s --help offers --json', async (cmd) => {
    const r = await run(cmd, '--help');
    expect(r.out).toMatch(/--json\b/);
  });
});
