// Debian's headless Chromium driven over the DevTools protocol (a WebSocket, the `ws` package already in
// node_modules): a page opened at a URL, then JavaScript evaluated in it (clicks included), screenshots.
// No browser download, nothing but the page's own server reached.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { CHROMIUM_FLAGS } from './chromium.js';
import { until } from './wait.js';

export interface Page {
  /** Evaluates an expression (a promise is awaited) and returns its value. */
  eval<T = unknown>(expression: string): Promise<T>;
  /** Waits until the expression is truthy. */
  waitFor(expression: string, ms?: number): Promise<void>;
  screenshot(file: string): Promise<void>;
  /** Shows the page as a screen of this size would (a phone: mobile), or as opened again (undefined). */
  emulate(screen: { width: number; height: number; mobile: boolean } | undefined): Promise<void>;
  close(): Promise<void>;
}

export async function openPage(url: string, size = { width: 1280, height: 900 }): Promise<Page> {
  const dir = mkdtempSync(join(tmpdir(), 'podwire-cdp-'));
  const proc: ChildProcess = spawn(
    'chromium',
    [...CHROMIUM_FLAGS, `--user-data-dir=${dir}`, '--remote-debugging-port=0', `--window-size=${size.width},${size.height}`, 'about:blank'],
    { stdio: 'ignore' },
  );
  const exited = new Promise((r) => proc.once('exit', r));
  const close = async () => {
    proc.kill('SIGKILL');
    // Its profile is written to until it is gone.
    await exited;
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  };
  try {
    const portFile = join(dir, 'DevToolsActivePort');
    await until(
      () => {
        try {
          return readFileSync(portFile, 'utf8').includes('\n');
        } catch {
          return false;
        }
      },
      20_000,
      'chromium to open its DevTools port',
    );
    const port = readFileSync(portFile, 'utf8').split('\n')[0];
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { type: string; webSocketDebuggerUrl: string }[];
    const ws = new WebSocket(targets.find((x) => x.type === 'page')!.webSocketDebuggerUrl);
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    let seq = 0;
    const waiting = new Map<number, (m: { result?: any; error?: { message: string } }) => void>();
    ws.on('message', (d) => {
      const m = JSON.parse(String(d));
      if (m.id) waiting.get(m.id)?.(m);
    });
    const call = (method: string, params: object = {}): Promise<any> =>
      new Promise((resolve, reject) => {
        const id = ++seq;
        waiting.set(id, (m) => (m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result)));
        ws.send(JSON.stringify({ id, method, params }));
      });
    await call('Page.enable');
    await call('Page.navigate', { url });
    const page: Page = {
      async eval<T>(expression: string) {
        const r = await call('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
        if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
        return r.result.value as T;
      },
      async waitFor(expression, ms = 10_000) {
        await until(async () => !!(await page.eval(expression).catch(() => false)), ms, expression);
      },
      async screenshot(file) {
        const r = await call('Page.captureScreenshot', { format: 'png' });
        writeFileSync(file, Buffer.from(r.data, 'base64'));
      },
      async emulate(screen) {
        if (screen) await call('Emulation.setDeviceMetricsOverride', { ...screen, deviceScaleFactor: 2 });
        else await call('Emulation.clearDeviceMetricsOverride');
      },
      async close() {
        ws.close();
        await close();
      },
    };
    return page;
  } catch (e) {
    await close();
    throw e;
  }
}
