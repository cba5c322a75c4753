// One thing done to a node, as people read it in a trace (cni/trace.ts): what, the exact command, and why.
// Every floor that changes something describes its steps with this; kernel builders return them with
// the command they run, so the trace shows exactly what was done.

export interface Step {
  what: string;
  cmd?: string;
  why: string;
}

/** A step whose command is an `ip -batch` line. */
export type IpStep = Step & { cmd: string };
export const cmds = (steps: readonly IpStep[]): string[] => steps.map((s) => s.cmd);
