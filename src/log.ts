// One pino logger per process, writing JSON lines to a file. stdout is never used: it belongs to the
// CNI result. Until configure() runs (or when the file cannot be opened) logging goes nowhere (or stderr).
import pino, { type Logger, type Level } from 'pino';

export const DEFAULT_LOG_FILE = '/var/log/podwire.log';
const LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export let log: Logger = pino({ level: 'silent' });

export function validLogLevel(l: unknown): l is Level | 'silent' {
  return typeof l === 'string' && LEVELS.includes(l);
}

/** Opens the log file (synchronously, so the last line is on disk when the plugin exits). */
export function configureLog(file: string, level: string, toStderr = false): Logger {
  try {
    const dest = toStderr ? pino.destination(2) : pino.destination({ dest: file, sync: true, mkdir: true, append: true });
    log = pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  } catch (e) {
    // A read-only /var/log must not make pods fail to start: warn on stderr, where runtimes keep it.
    process.stderr.write(`podwire: cannot open log file ${file}: ${(e as Error).message}\n`);
    log = pino({ level: 'silent' });
  }
  return log;
}
