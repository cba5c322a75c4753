// The plugin's stdin and stdout, with the JavaScript runtime's own primitives: under Bun, Bun.stdin and
// Bun.write; under Node, node:fs (taken with process.getBuiltinModule, so importing this loads nothing).
// Measured under Bun: loading node:fs costs ~1.5 ms and the first process.stdout.write ~20 ms, while
// VERSION, answered from here alone, needs neither.
import type * as Fs from 'node:fs';

interface BunIO {
  stdin: { text(): Promise<string> };
  stdout: unknown;
  write(dest: unknown, data: string): Promise<number>;
}
const bun = (globalThis as { Bun?: BunIO }).Bun;
const fs = (): typeof Fs => process.getBuiltinModule('node:fs') as typeof Fs;

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
  if (bun) {
    await bun.write(bun.stdout, text);
    return;
  }
  for (let buf = Buffer.from(text); buf.length; ) buf = buf.subarray(fs().writeSync(1, buf));
}
