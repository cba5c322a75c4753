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

/** A command that has been started and waits for its input (see start()). */
export interface Started {
  /** Writes `input` (may be empty), closes the command's stdin, and waits for it to end. */
  finish(input?: string): Promise<RunResult>;
}

interface BunSink {
  write(s: string): number;
  end(): void;
}

interface BunSpawn {
  spawn(o: { cmd: string[]; env?: NodeJS.ProcessEnv; stdin: 'pipe'; stdout: 'pipe'; stderr: 'pipe' }): {
    stdin: BunSink;
    exited: Promise<number>;
    stdout: ReadableStream;
    stderr: ReadableStream;
    resourceUsage(): { cpuTime: { total: bigint } } | undefined;
  };
}
const bun = (globalThis as { Bun?: BunSpawn }).Bun;

function startBun(b: BunSpawn, cmd: string, args: readonly string[], opts: RunOptions): Started {
  const at = performance.now();
  // Throws (ENOENT, with syscall) when the command cannot be started, as execFile's error does.
  const p = b.spawn({ cmd: [cmd, ...args], env: opts.env, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' });
  // Read from the start, so a command that writes a lot before its input ends never blocks on a full pipe.
  const out = Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return {
    async finish(input = '') {
      try {
        if (input) p.stdin.write(input);
        p.stdin.end();
      } catch {
        // the command exited without reading its input: its exit code tells
      }
      const [code, stdout, stderr] = await out;
      if (profile) {
        const us = p.resourceUsage()?.cpuTime.total;
        recordCommand(opts.label ?? cmd, at, us === undefined ? undefined : Number(us) / 1000);
      }
      return { code, stdout, stderr };
    },
  };
}

function startNode(cmd: string, args: readonly string[], opts: RunOptions): Started {
  const { execFile } = process.getBuiltinModule('node:child_process') as typeof ChildProcess;
  const at = performance.now();
  let child!: ChildProcess.ChildProcess;
  const done = new Promise<RunResult>((resolve, reject) => {
    child = execFile(cmd, args, { maxBuffer: 64 << 20, env: opts.env }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e && typeof e.code === 'string') return reject(e); // could not be started
      recordCommand(opts.label ?? cmd, at);
      resolve({ code: e ? Number(e.code ?? 1) : 0, stdout, stderr });
    });
  });
  child.stdin!.on('error', () => {}); // EPIPE when the command exits before reading its input
  done.catch(() => {}); // a command that could not start is reported by finish(), if anyone asks
  return {
    finish(input = '') {
      child.stdin!.end(input);
      return done;
    },
  };
}

/** What starts commands: the real processes, or a stand-in (a test's fake kernel, test/helpers/fake-kernel.ts). */
export type Runner = (cmd: string, args: readonly string[], opts: RunOptions) => Started;
let runner: Runner | undefined;

/**
 * The seam a unit test uses to see every command a verb runs, as text, and answer it without a kernel:
 * `useRunner(fake)`, and `useRunner(undefined)` to go back to real processes.
 */
export function useRunner(r: Runner | undefined): void {
  runner = r;
}

/**
 * Starts a command now and gives it its input later: what it costs to start (an `ip` needs ~1 ms before
 * it reads its first line) then runs while the caller prepares the input, instead of after.
 */
export function start(cmd: string, args: readonly string[], opts: RunOptions = {}): Started {
  spawned.count++;
  if (runner) return runner(cmd, args, opts);
  return bun ? startBun(bun, cmd, args, opts) : startNode(cmd, args, opts);
}

/**
 * Runs a command; resolves with its exit code and output (a non-zero exit is not an exception; a command
 * that cannot be started is: the error has `code` and `syscall`, which the CNI skeleton reports as I/O).
 * A command that exits without reading all of its input is not an error either.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return start(cmd, args, opts).finish(opts.input);
}

/**
 * The podwire binary to execute for a child (a lab pod's plugin, a command re-run in a lab node): this
 * process's own, or dist/podwire beside the bundle when this runs under node or bun.
 */
export function podwireBinary(): string {
  const name = process.execPath.slice(process.execPath.lastIndexOf('/') + 1);
  if (!/^(node|bun)$/.test(name)) return process.execPath;
  const script = process.argv[1] ?? './x';
  return `${script.includes('/') ? script.slice(0, script.lastIndexOf('/')) : '.'}/podwire`;
}
