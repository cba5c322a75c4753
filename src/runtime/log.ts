// One logger per process, writing pino's JSON lines ({"level":30,"time":"<ISO>","pid":N,...fields,"msg":"..."})
// synchronously, so the last line is on disk when the plugin exits. stdout is never used: it belongs to the
// CNI result. Until configureLog() runs, logging goes nowhere. The file is opened at the first line, not
// by configureLog: the plugin configures its log before its first kernel command and writes after it,
// and writes after it (see files.ts).
//
// The plugin runs once per pod and pino's start-up alone costs more than a pod's whole kernel work under
// Bun (measured: a binary that only creates a pino logger takes ~30 ms, one that does nothing ~5 ms), so
// the per-pod path writes the lines itself. The CLI and the agent, where start-up does not matter, use pino
// (src/cli/log.ts installs it with setLog). test/unit/log.test.ts holds both to the same lines.
import { dirOf, mkdirs, sys } from './files.js';
import { writeStderr } from './stdio.js';

export type LogFn = (objOrMsg: Record<string, unknown> | string, msg?: string) => void;

/** What podwire calls on a logger: pino's Logger has it all. */
export interface Logger {
  level: string;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
}

export const DEFAULT_LOG_FILE = '/var/log/podwire.log';
const LEVELS: Record<string, number> = { fatal: 60, error: 50, warn: 40, info: 30, debug: 20, trace: 10, silent: Infinity };

export function validLogLevel(l: unknown): l is string {
  return typeof l === 'string' && l in LEVELS;
}

/** pino's err serializer (pino-std-serializers), for the one key pino serializes by default. */
const errJson = (e: Error): Record<string, unknown> => ({ type: e.constructor?.name ?? 'Error', message: e.message, stack: e.stack });

/** pino's line for one call; JSON.stringify drops undefined fields exactly as pino does. */
export function logLine(level: number, fields: Record<string, unknown> | undefined, msg: string | undefined, time = new Date()): string {
  let line = `{"level":${level},"time":"${time.toISOString()}","pid":${process.pid}`;
  for (const k in fields) {
    let v = fields[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    if (k === 'err' && v instanceof Error) v = errJson(v);
    line += `,${JSON.stringify(k)}:${JSON.stringify(v)}`;
  }
  if (msg !== undefined) line += `,"msg":${JSON.stringify(msg)}`;
  return line + '}\n';
}

/** Where a LineLogger writes: a file opened at the first line, stderr, or nowhere. */
type Sink = { file: string } | { fd: number } | undefined;

class LineLogger implements Logger {
  private readonly min: number;
  readonly fatal: LogFn;
  readonly error: LogFn;
  readonly warn: LogFn;
  readonly info: LogFn;
  readonly debug: LogFn;
  readonly trace: LogFn;

  constructor(
    private sink: Sink,
    readonly level: string,
  ) {
    this.min = sink === undefined ? Infinity : (LEVELS[level] ?? LEVELS.info!);
    const at =
      (n: number): LogFn =>
      (a, b) => {
        if (n < this.min) return;
        const fd = this.fd();
        if (fd !== undefined) sys().write(fd, typeof a === 'string' ? logLine(n, undefined, a) : logLine(n, a, b));
      };
    [this.fatal, this.error, this.warn, this.info, this.debug, this.trace] = [60, 50, 40, 30, 20, 10].map(at) as LogFn[];
  }

  private fd(): number | undefined {
    if (this.sink && 'file' in this.sink) {
      const file = this.sink.file;
      try {
        this.sink = { fd: openAppend(file) };
      } catch (e) {
        // A read-only /var/log must not make pods fail to start: warn on stderr, where runtimes keep it.
        writeStderr(`podwire: cannot open log file ${file}: ${(e as Error).message}\n`);
        this.sink = undefined;
      }
    }
    return this.sink?.fd;
  }
}

export let log: Logger = new LineLogger(undefined, 'silent');

/** Replaces the process's logger (the CLI installs pino). */
export function setLog(l: Logger): Logger {
  return (log = l);
}

function openAppend(file: string): number {
  try {
    return sys().openAppend(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirs(dirOf(file));
    return sys().openAppend(file);
  }
}

/** The plugin's log: `file` (opened at the first line written), or stderr. */
export function configureLog(file: string, level: string, toStderr = false): Logger {
  return setLog(new LineLogger(toStderr ? { fd: 2 } : { file }, level));
}
