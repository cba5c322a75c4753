// PODWIRE_PROFILE=1 in the plugin's environment: where one call's time goes, step by step, in its log line
// ("profile": [{step, at, ms, cpu}]). `at` is when the step began, in ms since the process started; `ms`
// its wall time; `cpu` the CPU ms it cost: this process's own for a step done in-process, the command's
// own for a command (under Bun, which reports a child's rusage). `npm run bench` turns these into the
// README's cost budget. Off (the default), nothing is recorded and nothing is measured.

export interface Span {
  step: string;
  at: number;
  ms: number;
  cpu?: number;
  /** On the closing "end" mark: the wall-clock time (ms since 1970), to line up with the caller's clock. */
  epoch?: number;
}

export const profile: Span[] | undefined = process.env.PODWIRE_PROFILE === '1' ? [] : undefined;

const round = (x: number): number => Math.round(x * 100) / 100;
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** The start-up of the runtime, from exec to the first line of podwire's code. */
export function recordStartup(): void {
  profile?.push({ step: 'start-up', at: 0, ms: round(performance.now()), cpu: round(cpuMs()) });
}

/** Runs and records a step done in this process (sync, or async with its CPU left out: others run meanwhile). */
export function timed<T>(step: string, fn: () => T): T {
  if (!profile) return fn();
  const at = performance.now();
  const cpu = cpuMs();
  const done = (sync: boolean) =>
    profile.push({ step, at: round(at), ms: round(performance.now() - at), ...(sync ? { cpu: round(cpuMs() - cpu) } : {}) });
  let out: T;
  try {
    out = fn();
  } catch (e) {
    done(true);
    throw e;
  }
  if (out instanceof Promise) return out.finally(() => done(false)) as T;
  done(true);
  return out;
}

/** Records a command's run (src/runtime/run.ts calls this): started at `at`, `cpu` its own when known. */
export function recordCommand(step: string, at: number, cpu?: number): void {
  profile?.push({ step, at: round(at), ms: round(performance.now() - at), ...(cpu === undefined ? {} : { cpu: round(cpu) }) });
}

/** The spans so far, in the order they began, closed by an "end" mark: what the log line carries. */
export function profileSoFar(): Span[] | undefined {
  if (!profile) return undefined;
  const now = performance.now();
  return [...profile.sort((a, b) => a.at - b.at), { step: 'end', at: round(now), ms: 0, epoch: performance.timeOrigin + now }];
}
