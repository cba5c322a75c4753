// A verb as a plan: actions, each with what it waits for, run by one small executor that owns what the
// verbs would otherwise each do by hand — running side by side what does not depend on something else
// (the per-pod path's time is mostly processes starting and the kernel's waits, so they overlap), taking
// back what was made when anything fails, and keeping the trace in the order a reader expects.
//
// An action registers an undo right after each thing it makes (`keep`), as the reference bridge plugin
// defers a cleanup after each acquisition; on failure the undos run in reverse order, every one even if
// another fails. A failure is known by its action's id (PlanError.action), and by what the kernel said as
// values (kernel/run.ts IpBatchError.step, .errno, .device) — never by a line number or ip's text.
import type { Msg } from '../i18n/index.js';
import type { Trace } from '../cni/trace.js';
import type { Step } from '../kernel/step.js';
import { log } from '../runtime/log.js';

type Note = Parameters<Trace['step']>[1];

/**
 * What an action leaves in the trace, written when the plan ends in the order of the plan's actions. A
 * note may be decided then (a function), when it depends on what another action did meanwhile.
 */
export type TraceRecord = { step: Step; note?: Note | (() => Note) } | { batch: Parameters<Trace['batch']> };

export interface ActionApi {
  /** Registers how to take back what was just made, should the call fail. */
  keep(label: Msg, undo: () => Promise<unknown>): void;
  /** For the trace: a step, or a batch of steps that went to the kernel in one process. */
  record(r: TraceRecord): void;
  /** Whether anyone reads the trace (without one, nothing is formatted). */
  readonly tracing: boolean;
}

export interface Action<Id extends string> {
  id: Id;
  /** Actions that must be done before this one starts. Everything else runs at the same time. */
  after?: readonly Id[];
  run(api: ActionApi): Promise<void> | void;
}

/** The call failed in this action; `cause` is what it threw (a CniError keeps its code). */
export class PlanError<Id extends string = string> extends Error {
  constructor(
    readonly action: Id,
    readonly cause: unknown,
  ) {
    super(`${action}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** An action that did not run because one it waits for failed. */
const SKIPPED = Symbol('skipped');

export class Plan<Id extends string> {
  private readonly undos: [label: Msg, undo: () => Promise<unknown>][] = [];

  constructor(
    /** The call, for the trace's undo lines ("the ADD of ctr1/eth0"). */
    private readonly call: Msg,
    private readonly trace?: Trace,
  ) {}

  /**
   * Runs the actions (each once those it waits for are done) and, when one fails, waits for the others
   * to settle, undoes everything kept, and throws the failure of the first failed action in plan order
   * (a PlanError). The trace gets each action's records in plan order (or `traceOrder`: an action may
   * start first and still be told after another), then the undos.
   */
  async run(actions: readonly Action<Id>[], traceOrder: readonly Id[] = actions.map((a) => a.id)): Promise<void> {
    const records = new Map<Id, TraceRecord[]>();
    const running = new Map<Id, Promise<void>>();
    for (const a of actions) {
      const mine: TraceRecord[] = [];
      records.set(a.id, mine);
      const api: ActionApi = {
        keep: (label, undo) => this.undos.push([label, undo]),
        record: (r) => mine.push(r),
        tracing: this.trace !== undefined,
      };
      const deps = (a.after ?? []).map((d) => {
        const p = running.get(d);
        if (!p) throw new Error(`plan: ${a.id} waits for ${d}, which comes later or is not in the plan`);
        return p;
      });
      const p = (deps.length ? Promise.all(deps).catch(() => Promise.reject(SKIPPED)) : Promise.resolve()).then(() => a.run(api));
      p.catch(() => {}); // looked at below, once every action has settled
      running.set(a.id, p);
    }
    const settled = await Promise.allSettled(running.values());
    for (const id of traceOrder) for (const r of records.get(id) ?? []) this.write(r);
    const failed = actions.find((_, i) => settled[i]!.status === 'rejected' && (settled[i] as PromiseRejectedResult).reason !== SKIPPED);
    if (!failed) return;
    await this.rollback();
    throw new PlanError(failed.id, (settled[actions.indexOf(failed)] as PromiseRejectedResult).reason);
  }

  private write(r: TraceRecord): void {
    if (!this.trace) return;
    if ('batch' in r) this.trace.batch(...r.batch);
    else this.trace.step(r.step, typeof r.note === 'function' ? r.note() : r.note);
  }

  /** Every undo kept, last first, each even if another fails. */
  private async rollback(): Promise<void> {
    for (const [label, undo] of this.undos.splice(0).reverse()) {
      try {
        await undo();
        this.trace?.step({ id: 'undo', p: { undo: label, call: this.call } });
      } catch (e) {
        log.warn({ err: (e as Error).message, undo: label.id, call: this.call.p }, 'cleanup step of ADD failed');
        this.trace?.step({ id: 'undoFailed', p: { undo: label, call: this.call, error: (e as Error).message } });
      }
    }
  }
}
