// A numbered narrative of one ADD or DEL: each step, the exact command, and one line of why. It is for
// people learning how a pod gets its network, and for anyone asking "what did the plugin just do?".
//
// Off unless PODWIRE_TRACE is set in the plugin's environment (1|log: to the log file; stderr: to the log
// file and stderr) or `"trace": true | "stderr"` is in its config. Off, ctx.trace is undefined and the
// plugin does no extra work. Steps are recorded as they happen and written once, when the call ends.
import type { Step } from '../kernel/step.js';
import { invalidConfig, invalidEnv } from './errors.js';
import { log } from '../log.js';
import { writeStderr } from '../stdio.js';

export type TraceTarget = 'log' | 'stderr';

/** Where the trace goes, from PODWIRE_TRACE (wins) or the config's "trace"; undefined: no trace. */
export function traceTarget(env: string | undefined, conf: unknown): TraceTarget | undefined {
  if (env !== undefined && env !== '') {
    if (/^(1|true|log)$/i.test(env)) return 'log';
    if (/^stderr$/i.test(env)) return 'stderr';
    if (/^(0|false)$/i.test(env)) return undefined;
    throw invalidEnv('PODWIRE_TRACE', `"${env}" must be 1 (log file), stderr (log file and stderr) or 0`);
  }
  if (conf === undefined || conf === false) return undefined;
  if (conf === true) return 'log';
  if (conf === 'stderr') return 'stderr';
  throw invalidConfig('trace', 'must be true, false or "stderr"');
}

interface Entry extends Step {
  note?: string;
  failed?: string;
}

export class Trace {
  private readonly entries: Entry[] = [];

  constructor(
    readonly target: TraceTarget,
    /** e.g. "ADD lab-node1-pod1/eth0 (network podwire, netns /run/netns/x)". */
    readonly title: string,
  ) {}

  step(s: Step, note?: string): void {
    this.entries.push({ ...s, note });
  }

  /**
   * Steps that went to the kernel in one process (an `ip -batch`), their commands already written as the
   * equivalent single commands. `failedLine` (1-based, from IpBatchError) marks the step the kernel
   * refused; the ones after it never ran and are left out.
   */
  batch(steps: readonly Step[], ms: number, failedLine?: number, error?: string): void {
    const done = failedLine ? steps.slice(0, failedLine) : steps;
    const first = this.entries.length + 1;
    for (const s of done) this.entries.push({ ...s });
    const last = this.entries[this.entries.length - 1];
    if (!last) return;
    if (done.length > 1)
      last.note = `steps ${first}-${first + done.length - 1} went to the kernel in one \`ip -batch -\`, ${ms.toFixed(1)} ms`;
    if (failedLine) last.failed = error;
  }

  get length(): number {
    return this.entries.length;
  }

  /** The narrative as text: a title line, then the numbered steps. */
  text(outcome: string): string {
    const out = [`podwire ${this.title}`];
    this.entries.forEach((e, i) => {
      out.push(`${String(i + 1).padStart(3)}. ${e.what}`);
      for (const c of e.cmd?.split('\n') ?? []) out.push(`       $ ${c}`);
      out.push(`       why: ${e.why}`);
      if (e.failed) out.push(`       FAILED: ${e.failed}`);
      if (e.note) out.push(`       (${e.note})`);
    });
    out.push(`  => ${outcome}`);
    return out.join('\n') + '\n';
  }

  /** Writes the trace: one log line per step, and the text on stderr when asked. */
  write(outcome: string): void {
    this.entries.forEach((e, i) =>
      log.info({ trace: i + 1, what: e.what, cmd: e.cmd, why: e.why, failed: e.failed }, `trace ${this.title}`),
    );
    log.info({ trace: 'end', outcome }, `trace ${this.title}`);
    if (this.target === 'stderr') writeStderr(this.text(outcome));
  }
}
