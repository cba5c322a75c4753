// Stdio and the reads the plugin makes before its first kernel command, at the least cost to the pod.
//
// Under Bun, what comes before ADD's and DEL's first `ip` is on every pod's critical path, so it goes
// through Bun's own primitives (Bun.stdin, Bun.file: a read costs ~0.2 ms), not node:fs (2.5-4 ms to
// load) nor sys.ts (~0.8 ms to bind libc, done after the first command has started). Modules on the
// per-pod path never import node:fs; the few rare paths that need it (a delegated IPAM plugin's lookup,
// GC's lock, a dead writer's temp file) take it with fs(). Under Node, node:fs throughout.
// Never process.stdout or process.stderr: the first write through them costs ~20 ms under Bun.
import type * as Fs from 'node:fs';
import { sys } from './sys.js';

interface BunIO {
  stdin: { text(): Promise<string> };
  stdout: unknown;
  write(dest: unknown, data: string): Promise<number>;
  file(path: string): { text(): Promise<string>; exists(): Promise<boolean> };
}
const bun = (globalThis as { Bun?: BunIO }).Bun;

/** node:fs, loaded on the first call. */
export const fs = (): typeof Fs => process.getBuiltinModule('node:fs') as typeof Fs;

/** All of stdin ("" when there is none, e.g. a terminal in non-blocking mode). */
export async function readStdin(): Promise<string> {
  if (bun) return bun.stdin.text();
  try {
    return fs().readFileSync(0, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EOF') return '';
    throw e;
  }
}

/** A file's text; a failure is the system's error, with `code` (ENOENT, ...). */
export function readText(path: string): Promise<string> {
  return bun ? bun.file(path).text() : Promise.resolve(fs().readFileSync(path, 'utf8'));
}

export function exists(path: string): Promise<boolean> {
  return bun ? bun.file(path).exists() : Promise.resolve(fs().existsSync(path));
}

export async function writeStdout(text: string): Promise<void> {
  if (bun) await bun.write(bun.stdout, text);
  else writeAll(1, text);
}

/** Writes all of `text` to a descriptor (stderr), synchronously. */
export const writeAll = (fd: number, text: string): void => sys().write(fd, text);

/** The directory part of an absolute path ("/a/b/c" -> "/a/b"); node:path costs ~0.5 ms to load under Bun. */
export const dirOf = (path: string): string => path.slice(0, Math.max(1, path.lastIndexOf('/')));
