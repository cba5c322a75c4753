// The CLI's and the agent's logger: pino, writing the same JSON lines as the plugin's own writer
// (src/runtime/log.ts), to a file or stderr. Loaded only on the CLI path: pino's start-up is too dear per pod.
import pino from 'pino';
import { type Logger, setLog } from '../runtime/log.js';

export function configurePinoLog(file: string, level: string, toStderr = false): Logger {
  const dest = toStderr ? pino.destination(2) : pino.destination({ dest: file, sync: true, mkdir: true, append: true });
  return setLog(pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, dest));
}
