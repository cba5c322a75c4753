// Files, for all of podwire. Two kinds of callers:
// - the per-pod path, synchronous calls through sys(): under Bun straight to libc through bun:ffi, under
//   Node (or a Bun without its JIT, which bun:ffi needs) through node:fs. Failing as node:fs does: an Error
//   with `code` ("ENOENT", ...) and `syscall` — except for the failures a caller expects (a missing file,
//   a name that is taken), which are answered without building an Error (the first one built costs
//   ~0.5 ms under Bun). Why not node:fs: under Bun, loading it costs 2.5-4 ms of CPU per process
//   (measured), more than all of ADD's own work; bun:ffi with the calls below costs ~1 ms to load and
//   bind, and each call a few microseconds. The paths that reach here are validated by the callers.
// - the CLI and the agent, through node:fs (fs(), loaded on first use): files that others read while we
//   write them (binaries, network configs, the node subnet file) are replaced atomically — written to a
//   temp file beside the target, then renamed over it — so a reader sees the old file or the new one.
// Modules on the per-pod path never import node:fs; its rare paths that need it (a delegated IPAM
// plugin's lookup, GC's lock, a dead writer's temp file) take it with fs().
import type * as Fs from 'node:fs';

export interface Sys {
  /** true when the calls go straight to libc (Bun), where netlink() works. */
  readonly libc: boolean;
  /** undefined when the file does not exist. */
  readText(path: string): string | undefined;
  exists(path: string): boolean;
  /** Creates or truncates. */
  writeText(path: string, text: string): void;
  /** Opens for appending (created when missing): the log. */
  openAppend(path: string): number;
  write(fd: number, text: string): void;
  /** false when `path` exists already: link(2) is how a name is taken exclusively. */
  link(existing: string, path: string): boolean;
  symlink(target: string, path: string): void;
  /** undefined when there is no such link. */
  readlink(path: string): string | undefined;
  rename(from: string, to: string): void;
  /** false when there was nothing to remove. */
  unlink(path: string): boolean;
  /** One level; EEXIST when it is there. */
  mkdir(path: string, mode: number): void;
  readdir(path: string): string[];
  /** Whether two paths name the same file (device and inode): how two namespace files are compared. */
  sameFile(a: string, b: string): boolean;
  /**
   * Runs `f` (synchronous: nothing else of this process runs meanwhile) with this thread in the network
   * namespace at `netns`, then back in its own: /proc/sys/net, opened there, is that namespace's. false
   * when this runtime cannot (node:fs has no setns), and `f` is not run.
   */
  inNetns(netns: string, f: () => void): boolean;
  /**
   * One exchange with the kernel over a netlink socket of `protocol`, opened in this thread's network
   * namespace and closed after: `request` sent whole, then each datagram the kernel answers, until `done`
   * says the last is in (at most 1 s: then ETIMEDOUT). undefined when this runtime cannot (node has no
   * netlink sockets; an emulator may lack the protocol), and nothing was sent.
   */
  netlink(protocol: number, request: Uint8Array, done: (datagram: Uint8Array) => boolean): Uint8Array[] | undefined;
}

const CLONE_NEWNET = 0x40000000;
const ENOENT = 2;
const EEXIST = 17;
const EINVAL = 22;
const ENOTDIR = 20;
const ERRNO: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  5: 'EIO',
  9: 'EBADF',
  13: 'EACCES',
  17: 'EEXIST',
  18: 'EXDEV',
  20: 'ENOTDIR',
  21: 'EISDIR',
  22: 'EINVAL',
  24: 'EMFILE',
  28: 'ENOSPC',
  30: 'EROFS',
  36: 'ENAMETOOLONG',
  39: 'ENOTEMPTY',
  40: 'ELOOP',
  110: 'ETIMEDOUT',
};

function sysError(errno: number, syscall: string, path: string): NodeJS.ErrnoException {
  const code = ERRNO[errno] ?? `E${errno}`;
  return Object.assign(new Error(`${code}: ${syscall} '${path}' failed (errno ${errno})`), { code, errno: -errno, syscall, path });
}

// open(2) flags, and where struct dirent64 keeps d_name on x86_64 Linux (the binary's only target).
const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;
const O_CLOEXEC = 0o2000000;
const DIRENT_NAME = 19;
// socket(2) for netlink.
const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const EAGAIN = 11;
const ETIMEDOUT = 110;
const EPROTONOSUPPORT = 93;
const EAFNOSUPPORT = 97;

type Ptr = number;
interface Libc {
  open(path: Uint8Array, flags: number, mode: number): number;
  close(fd: number): number;
  read(fd: number, buf: Uint8Array, n: number): number | bigint;
  write(fd: number, buf: Uint8Array, n: number): number | bigint;
  link(a: Uint8Array, b: Uint8Array): number;
  symlink(a: Uint8Array, b: Uint8Array): number;
  readlink(path: Uint8Array, buf: Uint8Array, n: number): number | bigint;
  rename(a: Uint8Array, b: Uint8Array): number;
  unlink(path: Uint8Array): number;
  mkdir(path: Uint8Array, mode: number): number;
  access(path: Uint8Array, mode: number): number;
  stat(path: Uint8Array, buf: Uint8Array): number;
  opendir(path: Uint8Array): Ptr | null;
  readdir64(dir: Ptr): Ptr | null;
  closedir(dir: Ptr): number;
  __errno_location(): Ptr;
  setns(fd: number, nstype: number): number;
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number;
  send(fd: number, buf: Uint8Array, n: number, flags: number): number | bigint;
  recv(fd: number, buf: Uint8Array, n: number, flags: number): number | bigint;
}
interface Ffi {
  dlopen(lib: string, symbols: Record<string, { args: string[]; returns: string }>): { symbols: Libc };
  read: { i32(p: Ptr, offset: number): number };
  CString: new (p: Ptr, offset: number) => { toString(): string };
}

function libcSys(ffi: Ffi): Sys {
  const p = 'ptr';
  const c = ffi.dlopen('libc.so.6', {
    open: { args: [p, 'i32', 'u32'], returns: 'i32' },
    close: { args: ['i32'], returns: 'i32' },
    read: { args: ['i32', p, 'u64'], returns: 'i64' },
    write: { args: ['i32', p, 'u64'], returns: 'i64' },
    link: { args: [p, p], returns: 'i32' },
    symlink: { args: [p, p], returns: 'i32' },
    readlink: { args: [p, p, 'u64'], returns: 'i64' },
    rename: { args: [p, p], returns: 'i32' },
    unlink: { args: [p], returns: 'i32' },
    mkdir: { args: [p, 'u32'], returns: 'i32' },
    access: { args: [p, 'i32'], returns: 'i32' },
    stat: { args: [p, p], returns: 'i32' },
    opendir: { args: [p], returns: p },
    readdir64: { args: [p], returns: p },
    closedir: { args: [p], returns: 'i32' },
    __errno_location: { args: [], returns: p },
    setns: { args: ['i32', 'i32'], returns: 'i32' },
    socket: { args: ['i32', 'i32', 'i32'], returns: 'i32' },
    setsockopt: { args: ['i32', 'i32', 'i32', p, 'u32'], returns: 'i32' },
    send: { args: ['i32', p, 'u64', 'i32'], returns: 'i64' },
    recv: { args: ['i32', p, 'u64', 'i32'], returns: 'i64' },
  }).symbols;
  // TextEncoder and TextDecoder, not Buffer: Buffer's first use costs ~0.4 ms under Bun (measured).
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const z = (s: string): Uint8Array => encoder.encode(`${s}\0`);
  const errno = (): number => ffi.read.i32(c.__errno_location(), 0);
  /** Returns r, or throws with errno when the call failed (r < 0). */
  const check = <T extends number | bigint>(r: T, syscall: string, path: string): number => {
    if (Number(r) < 0) throw sysError(errno(), syscall, path);
    return Number(r);
  };
  /** For calls with an expected failure: true on success, false on `expected`, throws on anything else. */
  const unless = (r: number | bigint, expected: readonly number[], syscall: string, path: string): boolean => {
    if (Number(r) >= 0) return true;
    const e = errno();
    if (expected.includes(e)) return false;
    throw sysError(e, syscall, path);
  };
  const writeAll = (fd: number, text: string, path: string): void => {
    const buf = encoder.encode(text);
    for (let off = 0; off < buf.length;) off += check(c.write(fd, buf.subarray(off), buf.length - off), 'write', path);
  };
  return {
    libc: true,
    readText(path) {
      const fd = c.open(z(path), O_CLOEXEC, 0);
      if (!unless(fd, [ENOENT], 'open', path)) return undefined;
      try {
        let text = '';
        const buf = new Uint8Array(4096);
        for (;;) {
          const n = check(c.read(fd, buf, buf.length), 'read', path);
          if (n === 0) return text + decoder.decode();
          text += decoder.decode(buf.subarray(0, n), { stream: true });
        }
      } finally {
        c.close(fd);
      }
    },
    writeText(path, text) {
      const fd = check(c.open(z(path), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644), 'open', path);
      try {
        writeAll(fd, text, path);
      } finally {
        c.close(fd);
      }
    },
    exists: (path) => unless(c.access(z(path), 0), [ENOENT, ENOTDIR], 'access', path),
    openAppend: (path) => check(c.open(z(path), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644), 'open', path),
    write: (fd, text) => writeAll(fd, text, `fd ${fd}`),
    link: (a, b) => unless(c.link(z(a), z(b)), [EEXIST], 'link', b),
    symlink: (a, b) => void check(c.symlink(z(a), z(b)), 'symlink', b),
    readlink(path) {
      const buf = new Uint8Array(4096);
      const n = c.readlink(z(path), buf, buf.length);
      return unless(n, [ENOENT, EINVAL], 'readlink', path) ? decoder.decode(buf.subarray(0, Number(n))) : undefined;
    },
    rename: (a, b) => void check(c.rename(z(a), z(b)), 'rename', b),
    unlink: (path) => unless(c.unlink(z(path)), [ENOENT], 'unlink', path),
    mkdir: (path, mode) => void check(c.mkdir(z(path), mode), 'mkdir', path),
    sameFile(a, b) {
      // struct stat on x86_64: st_dev at 0, st_ino at 8 (u64 each); 144 bytes in all.
      const id = (path: string): [bigint, bigint] => {
        const buf = new Uint8Array(144);
        check(c.stat(z(path), buf), 'stat', path);
        const v = new DataView(buf.buffer);
        return [v.getBigUint64(0, true), v.getBigUint64(8, true)];
      };
      const [x, y] = [id(a), id(b)];
      return x[0] === y[0] && x[1] === y[1];
    },
    inNetns(netns, f) {
      const own = check(c.open(z('/proc/thread-self/ns/net'), O_CLOEXEC, 0), 'open', '/proc/thread-self/ns/net');
      try {
        const target = check(c.open(z(netns), O_CLOEXEC, 0), 'open', netns);
        try {
          check(c.setns(target, CLONE_NEWNET), 'setns', netns);
        } finally {
          c.close(target);
        }
        try {
          f();
        } finally {
          // Never go on in the pod's namespace: every later command would act on the pod, not the node.
          if (c.setns(own, CLONE_NEWNET) < 0) process.abort();
        }
      } finally {
        c.close(own);
      }
      return true;
    },
    netlink(protocol, request, done) {
      const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
      // qemu's user-mode emulation (the arm64 binary run on x86, an older CPU model) speaks only some netlink
      // protocols: the caller does it another way.
      if (!unless(fd, [EPROTONOSUPPORT, EAFNOSUPPORT], 'socket', `netlink ${protocol}`)) return undefined;
      try {
        // SO_RCVTIMEO, a struct timeval of 1 s: a kernel that never answers is an error, not a hang.
        const tv = new Uint8Array(16);
        new DataView(tv.buffer).setBigInt64(0, 1n, true);
        check(c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, tv.length), 'setsockopt', `netlink ${protocol}`);
        if (check(c.send(fd, request, request.length, 0), 'send', `netlink ${protocol}`) !== request.length)
          throw sysError(5, 'send', `netlink ${protocol}`);
        const out: Uint8Array[] = [];
        const buf = new Uint8Array(65536);
        for (;;) {
          const n = Number(c.recv(fd, buf, buf.length, 0));
          if (n < 0) {
            const e = errno();
            throw sysError(e === EAGAIN ? ETIMEDOUT : e, 'recv', `netlink ${protocol}`);
          }
          const d = buf.slice(0, n);
          out.push(d);
          if (done(d)) return out;
        }
      } finally {
        c.close(fd);
      }
    },
    readdir(path) {
      const dir = c.opendir(z(path));
      if (!dir) throw sysError(ffi.read.i32(c.__errno_location(), 0), 'opendir', path);
      const names: string[] = [];
      try {
        for (let e = c.readdir64(dir); e; e = c.readdir64(dir)) {
          const name = new ffi.CString(e, DIRENT_NAME).toString();
          if (name !== '.' && name !== '..') names.push(name);
        }
      } finally {
        c.closedir(dir);
      }
      return names;
    },
  };
}

/** Runs f; returns `fallback` when it fails with one of `codes`. */
function unlessCode<T>(f: () => T, codes: readonly string[], fallback: T): T {
  try {
    return f();
  } catch (e) {
    if (codes.includes((e as NodeJS.ErrnoException).code ?? '')) return fallback;
    throw e;
  }
}

function nodeSys(fs: typeof Fs): Sys {
  return {
    libc: false,
    readText: (path) => unlessCode(() => fs.readFileSync(path, 'utf8'), ['ENOENT'], undefined),
    writeText: (path, text) => fs.writeFileSync(path, text),
    exists: (path) => fs.existsSync(path),
    openAppend: (path) => fs.openSync(path, 'a'),
    write(fd, text) {
      for (let buf = Buffer.from(text); buf.length;) buf = buf.subarray(fs.writeSync(fd, buf));
    },
    link: (a, b) => unlessCode(() => (fs.linkSync(a, b), true), ['EEXIST'], false),
    symlink: (a, b) => fs.symlinkSync(a, b),
    readlink: (path) => unlessCode(() => fs.readlinkSync(path), ['ENOENT', 'EINVAL'], undefined),
    rename: (a, b) => fs.renameSync(a, b),
    unlink: (path) => unlessCode(() => (fs.unlinkSync(path), true), ['ENOENT'], false),
    mkdir: (path, mode) => fs.mkdirSync(path, { mode }),
    readdir: (path) => fs.readdirSync(path),
    sameFile(a, b) {
      const [x, y] = [fs.statSync(a, { bigint: true }), fs.statSync(b, { bigint: true })];
      return x.dev === y.dev && x.ino === y.ino;
    },
    inNetns: () => false,
    netlink: () => undefined,
  };
}

/** node:fs, loaded on the first call. */
export const fs = (): typeof Fs => process.getBuiltinModule('node:fs') as typeof Fs;

/** The directory part of an absolute path ("/a/b/c" -> "/a/b"): node:path costs ~1 ms to load under Bun. */
export const dirOf = (path: string): string => path.slice(0, Math.max(1, path.lastIndexOf('/')));

let chosen: Sys | undefined;

/** A stand-in for the calls (a unit test's: /proc/sys without root), or undefined to bind the real ones again. */
export function useSys(s: Sys | undefined): void {
  chosen = s;
}

/**
 * The calls, bound on first use: libc under Bun, node:fs under Node — and under a Bun that cannot bind
 * libc (bun:ffi needs the JIT, which BUN_JSC_useJIT=0 in the runtime's environment turns off).
 */
export function sys(): Sys {
  if (!chosen) {
    try {
      if ((globalThis as { Bun?: unknown }).Bun) chosen = libcSys(process.getBuiltinModule('bun:ffi') as Ffi);
    } catch {
      // fall back to node:fs below
    }
    chosen ??= nodeSys(fs());
  }
  return chosen;
}

/** mkdir -p: each missing level, top down. */
export function mkdirs(path: string, mode = 0o755): void {
  try {
    sys().mkdir(path, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT') throw e;
    mkdirs(path.slice(0, Math.max(1, path.lastIndexOf('/'))), mode);
    unlessCode(() => sys().mkdir(path, mode), ['EEXIST'], undefined); // made meanwhile by a parallel ADD
  }
}

/**
 * Copies src to dst through a temp file in dst's directory, flushed to disk, then renamed over dst: a
 * process executing dst meanwhile keeps the old inode (no ETXTBSY, no half-written binary), and a crash
 * leaves the old file or the new one, never a truncated one.
 */
export function atomicCopy(src: string, dst: string, mode: number): void {
  const tmp = `${dst}.tmp-${process.pid}`;
  try {
    fs().copyFileSync(src, tmp);
    fs().chmodSync(tmp, mode);
    const fd = fs().openSync(tmp, 'r');
    try {
      fs().fsyncSync(fd);
    } finally {
      fs().closeSync(fd);
    }
    fs().renameSync(tmp, dst);
  } finally {
    fs().rmSync(tmp, { force: true });
  }
}

/** Points dst at target (a symlink), replacing whatever dst was in one rename: dst never goes missing. */
export function atomicSymlink(target: string, dst: string): void {
  const tmp = `${dst}.tmp-${process.pid}`;
  try {
    fs().rmSync(tmp, { force: true });
    fs().symlinkSync(target, tmp);
    fs().renameSync(tmp, dst);
  } finally {
    fs().rmSync(tmp, { force: true });
  }
}

export function atomicWrite(dst: string, content: string, mode = 0o644): void {
  const tmp = `${dst}.tmp-${process.pid}`;
  try {
    fs().writeFileSync(tmp, content, { mode });
    fs().renameSync(tmp, dst);
  } finally {
    fs().rmSync(tmp, { force: true });
  }
}

/** Writes atomically, and only when the content differs (readers watching the file see no churn). */
export function writeIfChanged(path: string, content: string): boolean {
  if (sys().readText(path) === content) return false;
  mkdirs(dirOf(path));
  atomicWrite(path, content);
  return true;
}
