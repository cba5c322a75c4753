// An exclusive lock on a file that a crash can never leave held.
//
// Node and Bun have no flock(2). We open the lock file ourselves and let util-linux's `flock` take the
// lock on the inherited descriptor (`flock -w T 3`). flock(2) locks belong to the open file description,
// which the child shares with us: when flock exits the lock stays held through our descriptor, and it is
// released when we close it - or by the kernel when this process dies, however it dies. host-local
// flocks the same "lock" file, so the two exclude each other too.
//
// Only GC takes it (see allocator.ts): node:child_process is loaded here, on that path, and not by every ADD.
import type * as ChildProcess from 'node:child_process';
import { CniError, Code } from '../cni/errors.js';
import { fs } from '../runtime/files.js';

export const LOCK_TIMEOUT_S = 30;

export function lockFile(path: string, timeoutS = LOCK_TIMEOUT_S): Promise<() => void> {
  const { spawn } = process.getBuiltinModule('node:child_process') as typeof ChildProcess;
  const { closeSync, openSync } = fs();
  const fd = openSync(path, 'a');
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['--exclusive', '--wait', String(timeoutS), '3'], {
      stdio: ['ignore', 'ignore', 'pipe', fd],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const fail = (msg: string, code: number = Code.IO) => {
      closeSync(fd);
      reject(new CniError(code, msg));
    };
    child.on('error', (e) => fail(`cannot run flock for ${path}: ${e.message}`));
    child.on('close', (code) => {
      if (code === 0) {
        let open = true;
        resolve(() => {
          if (open) closeSync(fd);
          open = false;
        });
      } else if (code === 1) {
        fail(`timed out after ${timeoutS}s waiting for lock ${path}`, Code.TryAgainLater);
      } else {
        fail(`flock ${path} failed (exit ${code}): ${stderr.trim()}`);
      }
    });
  });
}
