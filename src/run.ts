// Running a command: an argument array, never a shell; stdin given as a string.
//
// Under Bun (the compiled binary) commands start with Bun.spawn; under Node with child_process.execFile.
// Bun's node:child_process is a JavaScript layer over Bun.spawn whose loading alone costs ~10 ms per
// process (measured: a binary that runs `true` through it takes 15 ms, through Bun.spawn 6 ms), and the
// plugin runs once per pod. Node's module is taken with process.getBuiltinModule, so it too is loaded only
// when a command runs.
import type * as ChildProcess from 'node:child_process';
import { profile, recordCommand } from './profile.js';

/** Processes started by this process so far: the benchmark and `peers sync --json` report it. */
export const spawned = { count: 0 };

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** The step's name in a PODWIRE_PROFILE record (default: the command). */
  label?: string;
}

interface BunSpawn {
  spawn(o: { cmd: string[]; env?: NodeJS.ProcessEnv; stdin: Uint8Array; stdout: 'pipe'; stderr: 'pipe' }): {
    exited: Promise<number>;
    stdout: ReadableStream;
    stderr: ReadableStream;
    resourceUsage(): { cpuTime: { total: bigint } } | undefined;
  };
}
const bun = (globalThis as { Bun?: BunSpawn }).Bun;

async function runBun(b: BunSpawn, cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const at = performance.now();
  // Throws (ENOENT, with syscall) when the command cannot be started, as execFile's error does.
  const p = b.spawn({ cmd: [cmd, ...args], env: opts.env, stdin: Buffer.from(opts.input ?? ''), stdout: 'pipe', stderr: 'pipe' });
  const [code, stdout, stderr] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  if (profile) {
    const us = p.resourceUsage()?.cpuTime.total;
    recordCommand(opts.label ?? cmd, at, us === undefined ? undefined : Number(us) / 1000);
  }
  return { code, stdout, stderr };
}

function runNode(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const { execFile } = process.getBuiltinModule('node:child_process') as typeof ChildProcess;
  const at = performance.now();
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 << 20, env: opts.env }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e && typeof e.code === 'string') return reject(e); // could not be started
      recordCommand(opts.label ?? cmd, at);
      resolve({ code: e ? Number(e.code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.on('error', () => {}); // EPIPE when the command exits before reading its input
    child.stdin!.end(opts.input ?? '');
  });
}

/**
 * Runs a command; resolves with its exit code and output (a non-zero exit is not an exception; a command
 * that cannot be started is: the error has `code` and `syscall`, which the CNI skeleton reports as I/O).
 * A command that exits without reading all of its input is not an error either.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  spawned.count++;
  return bun ? runBun(bun, cmd, args, opts) : runNode(cmd, args, opts);
}
