// Running a command: execFile with an argument array, never a shell; stdin given as a string.
import { execFile } from 'node:child_process';
import { CniError, Code } from './cni/errors.js';

/** Processes started by this process so far: the benchmark and `peers sync --json` report it. */
export const spawned = { count: 0 };

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command; resolves with its exit code and output (a non-zero exit is not an exception; a command
 * that cannot be started is). A command that exits without reading all of its input is not an error either.
 */
export function run(cmd: string, args: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  spawned.count++;
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 << 20, env: opts.env }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e && typeof e.code === 'string') {
        reject(new CniError(Code.IO, `cannot run ${cmd}: ${e.message}`));
        return;
      }
      resolve({ code: e ? Number(e.code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.on('error', () => {}); // EPIPE when the command exits before reading its input
    child.stdin!.end(opts.input ?? '');
  });
}
