// Files that others read while we write them (binaries, network configs, the node subnet file) are
// replaced atomically: written to a temp file beside the target, then renamed over it. A reader sees the
// old file or the new one, never half of one.
import { chmodSync, copyFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

export function atomicCopy(src: string, dst: string, mode: number): void {
  const tmp = `${dst}.tmp-${process.pid}`;
  try {
    copyFileSync(src, tmp);
    chmodSync(tmp, mode);
    renameSync(tmp, dst);
  } finally {
    rmSync(tmp, { force: true });
  }
}

export function atomicWrite(dst: string, content: string, mode = 0o644): void {
  const tmp = `${dst}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, content, { mode });
    renameSync(tmp, dst);
  } finally {
    rmSync(tmp, { force: true });
  }
}
