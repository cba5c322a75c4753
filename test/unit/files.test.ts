// src/runtime/files.ts has two implementations of the same calls: libc through bun:ffi (what the plugin uses,
// compiled by Bun) and node:fs. The probe makes the same calls through both, each on a fresh directory,
// and the answers (results and error codes) must be equal.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probe } from '../helpers/files-probe.js';
import { ARCHES, hostArch, runtimeBinary } from '../../scripts/build.mjs';

const root = mkdtempSync(join(tmpdir(), 'podwire-sys-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
// The Bun runtime dist/podwire is built on, for this machine's architecture.
const bun = runtimeBinary(ARCHES[hostArch() ?? 'amd64'].pkg);

describe('files: libc through bun:ffi against node:fs', () => {
  it('answers the same, errors included', () => {
    const underNode = probe(mkdtempSync(join(root, 'node-')));
    const bunDir = mkdtempSync(join(root, 'bun-'));
    const underBun = JSON.parse(
      execFileSync(bun, [join(import.meta.dirname, '..', 'helpers', 'files-probe.ts'), bunDir], { encoding: 'utf8' }),
    );
    expect(underBun).toEqual(underNode);
    // and the answers are the ones a caller expects, not two equal wrong ones
    expect(underNode.slice(0, 7)).toEqual([
      { ok: undefined },
      { ok: undefined },
      { ok: 'ctr1\r\neth0 — ü' },
      { ok: true },
      { ok: false },
      { code: 'ENOENT', syscall: 'string' },
      { ok: ['a', 'b'] },
    ]);
    expect(underNode.at(-2)).toEqual({ ok: 10_003 });
  });
});
