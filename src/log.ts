// One logger per process, writing pino's JSON lines ({"level":30,"time":"<ISO>","pid":N,...fields,"msg":"..."})
// synchronously, so the last line is on disk when the plugin exits. stdout is never used: it belongs to the
// CNI result. Until configureLog() runs, logging goes nowhere.
//
// The plugin runs once per pod and pino's start-up alone costs more than a pod's whole kernel work under
// Bun (measured: a binary that only creates a pino logger takes ~30 ms, one that does nothing ~5 ms), so
// the per-pod path writes the lines itself. The CLI and the agent, where start-up does not matter, use pino
// (src/cli/log.ts installs it with setLog). test/unit/log.test.ts holds both to the same lines.
import { mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeAll } from './files.js';

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

class LineLogger implements Logger {
  private readonly min: number;
  readonly fatal: LogFn;
  readonly error: LogFn;
  readonly warn: LogFn;
  readonly info: LogFn;
  readonly debug: LogFn;
  readonly trace: LogFn;

  constructor(
    private readonly fd: number | undefined,
    readonly level: string,
  ) {
    this.min = fd === undefined ? Infinity : (LEVELS[level] ?? LEVELS.info!);
    const at =
      (n: number): LogFn =>
      (a, b) => {
        if (n < this.min) return;
        writeSync(this.fd!, typeof a === 'string' ? logLine(n, undefined, a) : logLine(n, a, b));
      };
    [this.fatal, this.error, this.warn, this.info, this.debug, this.trace] = [60, 50, 40, 30, 20, 10].map(at) as LogFn[];
  }
}

export let log: Logger = new LineLogger(undefined, 'silent');

/** Replaces the process's logger (the CLI installs pino). */
export function setLog(l: Logger): Logger {
  return (log = l);
}

function openAppend(file: string): number {
  try {
    return openSync(file, 'a');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dirname(file), { recursive: true });
    return openSync(file, 'a');
  }
}

/** Opens the log file (or stderr) for the plugin's lines. */
export function configureLog(file: string, level: string, toStderr = false): Logger {
  try {
    return setLog(new LineLogger(toStderr ? 2 : openAppend(file), level));
  } catch (e) {
    // A read-only /var/log must not make pods fail to start: warn on stderr, where runtimes keep it.
    writeAll(2, `podwire: cannot open log file ${file}: ${(e as Error).message}\n`);
    return setLog(new LineLogger(undefined, 'silent'));
  }
}
