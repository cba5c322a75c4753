// The fake API server (fake-apiserver.mjs) as its own process inside a test's network namespace, so an
// agent in that namespace (or on the lab's underlay) reaches it without anything leaving the namespaces.
// Driven by JSON lines on its stdin; what it reports (listening, done, patch, watches) lands in `events`.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT, nsPath } from './netns.js';
import { until } from './wait.js';

export class ApiServerProcess {
  readonly events: any[] = [];
  private constructor(private readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => this.events.push(JSON.parse(l)));
  }

  /** Starts it in namespace `ns`, listening on host:port, and waits until it listens. */
  static async start(ns: string, port: number, host: string): Promise<ApiServerProcess> {
    const script = join(ROOT, 'test', 'helpers', 'fake-apiserver.mjs');
    const proc = spawn('nsenter', [`--net=${nsPath(ns)}`, process.execPath, script, String(port), host], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const api = new ApiServerProcess(proc);
    await until(() => api.events.some((e) => e.listening), 10_000, 'the API server');
    return api;
  }

  /** Sends one operation ({op: 'add', node}, update, remove, drop, compact, restart) and waits until it is done. */
  send(op: { op: string; [k: string]: unknown }): Promise<void> {
    const seen = this.events.length;
    this.proc.stdin!.write(JSON.stringify(op) + '\n');
    return until(() => this.events.slice(seen).some((e) => e.done === op.op));
  }

  kill(): void {
    this.proc.kill();
  }
}
