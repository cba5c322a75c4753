// A numbered narrative of one ADD or DEL: each step, the exact command, and one line of why. It is for
// people learning how a pod gets its network, and for anyone asking "what did the plugin just do?".
//
// Off unless PODWIRE_TRACE is set in the plugin's environment (1|log: to the log file; stderr: to the log
// file and stderr) or `"trace": true | "stderr"` is in its config. Off, ctx.trace is undefined and the
// plugin does no extra work. Steps are recorded as they happen and written once, when the call ends.
import type { Lang, MessageId, Msg } from '../i18n/index.js';
import type { Step } from '../kernel/step.js';
import { invalidConfig, invalidEnv } from './errors.js';
import { log } from '../runtime/log.js';
import { writeStderr } from '../runtime/stdio.js';

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
  note?: MessageId;
  /** For a batch's last step: which steps went in one `ip -batch`, and how long it took. */
  batch?: { first: number; last: number; ms: string };
  failed?: string;
}

export class Trace {
  private readonly entries: Entry[] = [];

  constructor(
    readonly target: TraceTarget,
    /** e.g. "ADD lab-node1-pod1/eth0 (network podwire, netns /run/netns/x)", as a message. */
    readonly title: Msg,
    /** The plugin's environment: PODWIRE_LANG (en|zh), else LC_ALL/LC_MESSAGES/LANG, picks the language of the text. */
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  step(s: Step, note?: MessageId): void {
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
    if (done.length > 1) last.batch = { first, last: first + done.length - 1, ms: ms.toFixed(1) };
    if (failedLine) last.failed = error;
  }

  get length(): number {
    return this.entries.length;
  }

  /**
   * The narrative as text in the learner's language (English unless `lang` says otherwise): a title line,
   * then the numbered steps. The catalogues are loaded here, never by a call that writes no trace.
   */
  async text(outcome: Msg, lang?: Lang): Promise<string> {
    const { pickLang, setLang, t } = await import('../i18n/index.js');
    setLang(lang ?? pickLang(this.env.PODWIRE_LANG, this.env));
    const out = [`podwire ${t(this.title.id, this.title.p)}`];
    this.entries.forEach((e, i) => {
      out.push(`${String(i + 1).padStart(3)}. ${t(`step.${e.id}`, e.p)}`);
      for (const c of e.cmd?.split('\n') ?? []) out.push(`       $ ${c}`);
      out.push(`       ${t('trace.why')}: ${t(`step.${e.id}.why`, e.p)}`);
      if (e.failed) out.push(`       ${t('trace.failed')}: ${e.failed}`);
      if (e.note) out.push(`       (${t(e.note)})`);
      if (e.batch) out.push(`       (${t('note.batch', e.batch)})`);
    });
    out.push(`  => ${t(outcome.id, outcome.p)}`);
    return out.join('\n') + '\n';
  }

  /**
   * Writes the trace: one log line per step (in English, for whoever greps the log), and the text on stderr
   * when asked. A trace that cannot be written is logged, never the call's failure: the result is out already.
   */
  async write(outcome: Msg): Promise<void> {
    try {
      await this.writeAll(outcome);
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'the trace could not be written');
    }
  }

  private async writeAll(outcome: Msg): Promise<void> {
    const { setLang, t } = await import('../i18n/index.js');
    setLang('en');
    const title = `trace ${t(this.title.id, this.title.p)}`;
    this.entries.forEach((e, i) =>
      log.info(
        { trace: i + 1, step: e.id, what: t(`step.${e.id}`, e.p), cmd: e.cmd, why: t(`step.${e.id}.why`, e.p), failed: e.failed },
        title,
      ),
    );
    log.info({ trace: 'end', outcome: t(outcome.id, outcome.p) }, title);
    if (this.target === 'stderr') writeStderr(await this.text(outcome));
  }
}
