// The same file system calls, made through src/runtime/files.ts, for test/unit/sys.test.ts: under Bun (libc through
// bun:ffi) and under Node (node:fs) the answers must be equal. Usage: sys-probe.ts DIR; prints JSON.
import { mkdirs, sys } from '../../src/runtime/files.js';

export function probe(dir: string): unknown[] {
  const out: unknown[] = [];
  const s = sys();
  const code = (f: () => unknown): unknown => {
    try {
      return { ok: f() };
    } catch (e) {
      return { code: (e as NodeJS.ErrnoException).code, syscall: typeof (e as NodeJS.ErrnoException).syscall };
    }
  };
  out.push(code(() => s.readText(`${dir}/missing`)));
  out.push(code(() => s.writeText(`${dir}/a`, 'ctr1\r\neth0 — ü')));
  out.push(code(() => s.readText(`${dir}/a`)));
  out.push(code(() => s.link(`${dir}/a`, `${dir}/b`)));
  out.push(code(() => s.link(`${dir}/a`, `${dir}/b`)));
  out.push(code(() => s.link(`${dir}/a`, `${dir}/nodir/b`)));
  out.push(code(() => s.readdir(dir).sort()));
  out.push(code(() => s.symlink('10.0.0.1', `${dir}/s`)));
  out.push(code(() => s.readlink(`${dir}/s`)));
  out.push(code(() => s.readlink(`${dir}/a`)));
  out.push(code(() => s.readlink(`${dir}/missing`)));
  out.push(code(() => s.rename(`${dir}/s`, `${dir}/s2`)));
  out.push(code(() => s.readdir(dir).sort()));
  out.push(code(() => s.unlink(`${dir}/b`)));
  out.push(code(() => s.unlink(`${dir}/b`)));
  out.push(code(() => mkdirs(`${dir}/x/y/z`)));
  out.push(code(() => mkdirs(`${dir}/x/y/z`)));
  out.push(code(() => s.readdir(`${dir}/x/y`)));
  out.push(code(() => s.mkdir(`${dir}/x`, 0o755)));
  out.push(code(() => s.readdir(`${dir}/missing`)));
  out.push(
    code(() => {
      const fd = s.openAppend(`${dir}/log`);
      s.write(fd, 'line 1\n');
      s.write(fd, 'line 2\n');
      return s.readText(`${dir}/log`);
    }),
  );
  out.push(code(() => s.writeText(`${dir}/big`, 'x'.repeat(10_000) + 'end')));
  out.push(code(() => s.readText(`${dir}/big`)?.length));
  out.push(code(() => s.writeText(`${dir}/missing-dir/f`, 'x')));
  return out;
}

if (process.argv[2]) process.stdout.write(JSON.stringify(probe(process.argv[2])));
