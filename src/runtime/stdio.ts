// The plugin's stdio, at the least cost to the pod: under Bun, stdin through Bun.stdin (its read leaves
// the main thread idle, and the skeleton binds the file calls meanwhile) and stdout through Bun.write;
// never process.stdout or process.stderr, whose first write costs ~20 ms under Bun. Under Node, node:fs.
import { fs, sys } from './files.js';

interface BunIO {
  stdin: { text(): Promise<string> };
  stdout: unknown;
  write(dest: unknown, data: string): Promise<number>;
}
const bun = (globalThis as { Bun?: BunIO }).Bun;

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
  else sys().write(1, text);
}

/** Writes to stderr, synchronously: for people (a trace asked for on stderr, a log file that cannot open). */
export const writeStderr = (text: string): void => sys().write(2, text);
