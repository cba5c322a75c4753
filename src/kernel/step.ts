// One thing done to a node, as people read it in a trace (cni/trace.ts): what, the exact command, and why.
// Every floor that changes something describes its steps with this; kernel builders return them with
// the command they run, so the trace shows exactly what was done.
//
// What and why are kept as a message id and its values, not as words: the words are looked up in the
// learner's language (src/i18n: `step.<id>` and `step.<id>.why`) only when a trace is written, so a call
// without a trace builds no sentence and loads no catalogue (the import below is of types only).
import type { MessageId, Params } from '../i18n/index.js';

/** The steps the catalogues describe: every id with a `step.<id>.why`. */
export type StepId = { [K in MessageId]: K extends `step.${infer S}.why` ? S : never }[MessageId];

export interface Step {
  id: StepId;
  /** The values of the id's placeholders (the same for its what and its why). */
  p?: Params;
  cmd?: string;
}

/** A step whose command is an `ip -batch` line. */
export type IpStep = Step & { cmd: string };
export const cmds = (steps: readonly IpStep[]): string[] => steps.map((s) => s.cmd);
