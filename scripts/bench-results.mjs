// @ts-check
// The benchmark's figures, kept in .bench/results.json for the README's tables: each part adds its key.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '.bench');

/** Replaces `key` in .bench/results.json, keeping what the other parts wrote. @param {string} key @param {unknown} value */
export function saveResults(key, value) {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'results.json');
  let prev = {};
  try {
    prev = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    // the first part to write
  }
  writeFileSync(file, JSON.stringify({ ...prev, [key]: value }, null, 1));
}
