// Files that others read while we write them (binaries, network configs, the node subnet file) are
// replaced atomically: written to a temp file beside the target, then renamed over it. A reader sees the
// old file or the new one, never half of one.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

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

/** Writes atomically, and only when the content differs (readers watching the file see no churn). */
export function writeIfChanged(path: string, content: string): boolean {
  try {
    if (readFileSync(path, 'utf8') === content) return false;
  } catch {
    // missing: write it
  }
  mkdirSync(dirname(path), { recursive: true });
  atomicWrite(path, content);
  return true;
}

