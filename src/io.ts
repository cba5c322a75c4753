// The plugin's stdio, at the least cost to the pod: under Bun, stdin through Bun.stdin (its read leaves
// the main thread idle, and the skeleton binds sys.ts meanwhile) and stdout through Bun.write; never
// process.stdout or process.stderr, whose first write costs ~20 ms under Bun. Files go through sys.ts;
// modules on the per-pod path never import node:fs (2.5-4 ms to load under Bun), and the few rare paths
// that need it (a delegated IPAM plugin's lookup, GC's lock, a dead writer's temp file) take it with fs().
// Under Node, node:fs throughout.
import type * as Fs from 'node:fs';
import { sys } from './sys.js';

interface BunIO {
  stdin: { text(): Promise<string> };
  stdout: unknown;
  write(dest: unknown, data: string): Promise<number>;
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

export async function writeStdout(text: string): Promise<void> {
  if (bun) await bun.write(bun.stdout, text);
  else writeAll(1, text);
}

/** Writes all of `text` to a descriptor (stderr), synchronously. */
export const writeAll = (fd: number, text: string): void => sys().write(fd, text);

/** The directory part of an absolute path ("/a/b/c" -> "/a/b"); node:path costs ~0.5 ms to load under Bun. */
export const dirOf = (path: string): string => path.slice(0, Math.max(1, path.lastIndexOf('/')));
