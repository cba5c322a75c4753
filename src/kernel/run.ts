// Running ip and bridge, here or in another namespace. Kernel changes go in one `ip -batch -` per namespace;
// state is read with `ip -j` (see state.ts). Each process costs ~1.5-2 ms of CPU, so callers batch.
import { KernelError, commandFailed } from './errors.js';
import type { IpStep, StepId } from './step.js';
import { log } from '../runtime/log.js';
import { run, start } from '../runtime/run.js';

const NAMED_NETNS = /^(?:\/var)?\/run\/netns\/([^/]+)$/;

/**
 * ip (or bridge) inside the namespace at `netns`: `ip -n NAME` for a named namespace (what containerd's
 * CRI, CRI-O and podman use; one exec, and cheaper than nsenter + ip: measured 1.1 against 2.1 ms of CPU),
 * nsenter for any other path such as /proc/PID/ns/net. `ip -n NAME` opens /var/run/netns/NAME, which is
 * /run/netns/NAME wherever /var/run is the usual link to /run; the caller has checked the path exists.
 */
export function inNetns(tool: 'ip' | 'bridge', args: readonly string[], netns?: string): [string, string[]] {
  if (!netns) return [tool, [...args]];
  const named = NAMED_NETNS.exec(netns);
  return named ? [tool, ['-n', named[1]!, ...args]] : ['nsenter', [`--net=${netns}`, '--', tool, ...args]];
}
const ipArgv = (args: readonly string[], netns?: string): [string, string[]] => inNetns('ip', args, netns);

/** An `ip -batch` line as the single command that does the same in the same namespace (for the trace). */
export function ipCommand(line: string, netns?: string): string {
  const [cmd, args] = ipArgv([], netns);
  return [cmd, ...args, line].join(' ');
}

/**
 * What the kernel said, as a value: the one place that reads ip's words. `exists` (EEXIST), `noDevice`
 * (ENODEV, or a name ip could not resolve), `notSupported` (EOPNOTSUPP: e.g. `master` naming a link that
 * is no bridge), anything else `other`.
 */
export type KernelErrno = 'exists' | 'noDevice' | 'notSupported' | 'other';

function errnoOf(stderr: string): KernelErrno {
  if (/File exists/.test(stderr)) return 'exists';
  if (NO_SUCH_DEVICE.test(stderr)) return 'noDevice';
  if (/Operation not supported/.test(stderr)) return 'notSupported';
  return 'other';
}

/**
 * A failed `ip -batch` line: which one (1-based; 0 when ip stopped while reading a line's arguments, as it
 * does for a device name it cannot resolve), the line, the step it belongs to, and what the kernel said —
 * as values (`errno`, `device`), so that callers decide by those, never by ip's text or a line's place.
 */
export class IpBatchError extends KernelError {
  readonly errno: KernelErrno;
  /** The device ip named as missing (`Device "cni0" does not exist.`), when it named one. */
  readonly device?: string;

  constructor(
    readonly line: number,
    readonly command: string,
    readonly stderr: string,
    /** The step of the failed line, when the caller gave steps (and ip named the line). */
    readonly step?: StepId,
  ) {
    super(`ip: "${command}" failed: ${stderr.split('\n')[0]}`, stderr.trim());
    this.errno = errnoOf(stderr);
    // iproute2 6.x: `argument "cni0" is wrong: Device does not exist`; older: `Device "cni0" does not exist.`
    const dev = /argument "([^"]+)" is wrong: Device does not exist|Device "([^"]+)" does not exist|Cannot find device "([^"]+)"/.exec(
      stderr,
    );
    if (dev) this.device = dev[1] ?? dev[2] ?? dev[3];
  }
}

/** An `ip -batch -` started before its lines are known: apply() sends them, cancel() sends none. */
export interface PendingBatch {
  apply(lines: readonly string[]): Promise<void>;
  /** The same for steps: a failure names the step of the failed line. */
  applySteps(steps: readonly IpStep[]): Promise<void>;
  cancel(): void;
}

/**
 * Starts `ip -batch -` (in `netns`, or here) now, for lines that come later: the process starts while
 * the caller still works out what to send (see run.ts start()). ip stops at the first failing line; the
 * error names that line (IpBatchError.line, 1-based) so callers can tell which step failed and undo the
 * ones before it.
 */
export function startIpBatch(netns?: string): PendingBatch {
  const [cmd, args] = ipArgv(['-batch', '-'], netns);
  const started = start(cmd, args, { label: netns ? 'ip -batch (netns)' : 'ip -batch' });
  let sent = false;
  const send = async (lines: readonly string[], steps?: readonly IpStep[]): Promise<void> => {
    sent = true;
    const at = performance.now();
    const r = await started.finish(lines.join('\n') + '\n');
    log.debug({ netns, batch: lines, ms: +(performance.now() - at).toFixed(2), exit: r.code }, 'ip -batch');
    if (r.code === 0) return;
    const m = /Command failed -:(\d+)/.exec(r.stderr);
    const line = m ? Number(m[1]) : 0;
    throw new IpBatchError(line, lines[line - 1] ?? lines.join('; '), r.stderr.trim() || `exit ${r.code}`, steps?.[line - 1]?.id);
  };
  return {
    apply: (lines) => send(lines),
    applySteps: (steps) =>
      send(
        steps.map((s) => s.cmd),
        steps,
      ),
    cancel() {
      if (!sent) void started.finish().catch(() => {});
      sent = true;
    },
  };
}

/** Applies lines with one `ip -batch -` (see startIpBatch). */
export async function ipBatch(lines: readonly string[], netns?: string): Promise<void> {
  if (lines.length) await startIpBatch(netns).apply(lines);
}

export interface BatchFailure {
  command: string;
  error: string;
}

/**
 * Applies lines with one `ip -force -batch -` (or `bridge`, for FDB entries): unlike ipBatch it goes on
 * past a failing line, for reconcilers, where one bad entry must not hold back the others; the failures
 * are returned (and retried by the next reconcile).
 */
export async function forceBatch(tool: 'ip' | 'bridge', lines: readonly string[]): Promise<BatchFailure[]> {
  if (lines.length === 0) return [];
  const started = performance.now();
  const r = await run(tool, ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', label: `${tool} -force -batch` });
  log.debug({ tool, lines: lines.length, ms: +(performance.now() - started).toFixed(2), exit: r.code }, 'batch');
  if (r.code === 0) return [];
  const failures: BatchFailure[] = [];
  let pending: string[] = [];
  for (const l of r.stderr.split('\n')) {
    const m = /^Command failed -:(\d+)/.exec(l);
    if (!m) {
      if (l.trim()) pending.push(l.trim());
      continue;
    }
    failures.push({ command: lines[Number(m[1]) - 1] ?? '?', error: pending.join('; ') || 'failed' });
    pending = [];
  }
  return failures.length ? failures : [{ command: lines.join('; '), error: r.stderr.trim() || `exit ${r.code}` }];
}

/**
 * Reads state with `ip -j -batch -`: one JSON array per line. Note: in iproute2 6.1 a `link show` in a
 * batch makes later `addr show` lines lose their addresses, so read links with `addr show` instead; and
 * `route show` lists IPv4 only unless `options` has "-6".
 */
export async function ipJson(lines: readonly string[], netns?: string, options: readonly string[] = []): Promise<unknown[][]> {
  const [cmd, args] = ipArgv(['-j', '-d', ...options, '-batch', '-'], netns);
  const r = await run(cmd, args, { input: lines.join('\n') + '\n' });
  if (r.code !== 0 && !r.stdout) throw commandFailed('ip -j', r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('['))
    .map((l) => JSON.parse(l) as unknown[]);
}

/** What ip says of a link that is not there. */
export const NO_SUCH_DEVICE = /Cannot find device|does not exist|No such device/;
