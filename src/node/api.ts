// The agent's reads of the API server: a GET of one list page, and a watch (newline-delimited JSON events),
// over node:http(s) with the kubeconfig's credentials (client-node's KubeConfig applies the CA, client
// certificate and token to each request, so a rotated service-account token is read again). Written here
// rather than through client-node's generated client and Watch because an informer that must never be
// blind for long needs what those hide: the status and Retry-After of a failed watch, a list page's
// `continue`, a deadline on every request, and raw JSON (the same objects from a list as from a watch).
import { type ClientRequest, type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** A failed request, summarised: `cause` is short words for an operator (no raw body, no token). */
export class ApiError extends Error {
  constructor(
    readonly cause: string,
    /** The HTTP status, when the server answered. */
    readonly status?: number,
    /** What the server asked for in Retry-After, in ms. */
    readonly retryAfterMs?: number,
    /** The Status object's reason (Expired, TooManyRequests, ...), when the body had one. */
    readonly reason?: string,
  ) {
    super(cause);
  }

  /** 410 Gone / Expired: the resourceVersion or continue token is too old; only a fresh list helps. */
  get expired(): boolean {
    return this.status === 410 || this.reason === 'Expired' || this.reason === 'Gone';
  }
}

/** Retry-After in seconds (what the API server sends) or as an HTTP date, in ms; undefined when absent or unreadable. */
export function retryAfterMs(h: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A network failure in words: what an operator would check, not a stack of errno names. */
function networkCause(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'connection reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to the API server';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return "the API server's name does not resolve";
    case 'ETIMEDOUT':
      return 'timed out';
    default:
      return e.code ? `network error ${e.code}` : 'network error';
  }
}

/** The answer of a failed request as an ApiError (status, Retry-After, the Status object's reason and message). */
function httpError(res: IncomingMessage, body: string): ApiError {
  let reason: string | undefined;
  let message = '';
  try {
    const s = JSON.parse(body) as { reason?: unknown; message?: unknown };
    if (typeof s.reason === 'string') reason = s.reason;
    if (typeof s.message === 'string') message = s.message.slice(0, 120);
  } catch {
    // not a Status object
  }
  const wait = retryAfterMs(res.headers['retry-after']);
  const status = res.statusCode ?? 0;
  const words = `HTTP ${status}${reason ? ` ${reason}` : ''}${message ? `: ${JSON.stringify(message)}` : ''}`;
  return new ApiError(wait === undefined ? words : `${words} (Retry-After ${Math.round(wait / 1000)} s)`, status, wait, reason);
}

export interface ApiRequest {
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** The whole request (headers and body for a GET; headers only for a watch) must come within this. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export class ApiClient {
  constructor(private readonly kc: KubeConfig) {}

  get server(): string {
    return this.kc.getCurrentCluster()?.server ?? 'the API server';
  }

  private async open(r: ApiRequest, body?: unknown): Promise<{ req: ClientRequest; res: Promise<IncomingMessage>; done(): void }> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new ApiError('no current cluster in the kubeconfig');
    const url = new URL(cluster.server.replace(/\/$/, '') + r.path);
    for (const [k, v] of Object.entries(r.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const data = body === undefined ? undefined : JSON.stringify(body);
    const opts: import('node:https').RequestOptions = {
      method: data === undefined ? 'GET' : 'POST',
      headers: { Accept: 'application/json', ...(data === undefined ? {} : { 'Content-Type': 'application/json' }) },
    };
    await this.kc.applyToHTTPSOptions(opts);
    const secure = url.protocol === 'https:';
    if (!secure) delete opts.agent; // an https.Agent on a plain-HTTP server (a test's) would refuse to connect
    const req = (secure ? httpsRequest : httpRequest)(url, opts);
    const res = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      // `on`, not `once`: a request destroyed later (a deadline, an idle watch) emits another error.
      req.on('error', (e: NodeJS.ErrnoException) => reject(new ApiError(r.signal?.aborted ? 'stopped' : networkCause(e))));
    });
    const stop = () => req.destroy(Object.assign(new Error('stopped'), { code: 'ECONNRESET' }));
    r.signal?.addEventListener('abort', stop, { once: true });
    req.end(data);
    // Called when the caller is through with the request, whatever happened: the long-lived signal keeps no listener.
    return { req, res, done: () => r.signal?.removeEventListener('abort', stop) };
  }

  /**
   * Ends the request when `ms` pass without `touch()` (timers of our own, not the socket's: the same under
   * Node and under Bun's node:http). A request that never gets its answer, or a watch gone silent on a
   * server that died without closing the connection, must not keep the informer waiting.
   */
  private deadline(req: ClientRequest, ms: number): { touch(ms?: number): void; clear(): void } {
    let timer: NodeJS.Timeout | undefined;
    const touch = (next = ms) => {
      clearTimeout(timer);
      timer = setTimeout(() => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), next);
      timer.unref?.();
    };
    touch();
    req.on('close', () => clearTimeout(timer));
    return { touch, clear: () => clearTimeout(timer) };
  }

  /** GET of a JSON document (one list page); throws ApiError. */
  async get<T>(r: ApiRequest): Promise<T> {
    const { req, res, done } = await this.open(r);
    try {
      return await this.read<T>(req, res, r);
    } finally {
      done();
    }
  }

  /** POST of a JSON document (a TokenReview, a SubjectAccessReview), its answer read as JSON; throws ApiError. */
  async post<T>(r: ApiRequest, body: unknown): Promise<T> {
    const { req, res, done } = await this.open(r, body);
    try {
      return await this.read<T>(req, res, r, 201);
    } finally {
      done();
    }
  }

  private async read<T>(req: ClientRequest, res: Promise<IncomingMessage>, r: ApiRequest, created?: number): Promise<T> {
    const timer = this.deadline(req, r.timeoutMs);
    const answer = await res;
    const body = await new Promise<string>((resolve, reject) => {
      let text = '';
      answer.setEncoding('utf8');
      answer.on('data', (c: string) => (text += c));
      answer.on('end', () => resolve(text));
      answer.on('error', (e: NodeJS.ErrnoException) => reject(new ApiError(networkCause(e))));
      answer.on('aborted', () => reject(new ApiError('the answer was cut off')));
    });
    timer.clear();
    if (answer.statusCode !== 200 && answer.statusCode !== created) throw httpError(answer, body);
    try {
      return JSON.parse(body) as T;
    } catch {
      throw new ApiError(`the answer is not JSON (${body.length} bytes)`, 200);
    }
  }

  /**
   * A watch: calls `onEvent` for each event line as it arrives; resolves when the server ends the stream,
   * rejects (ApiError) when it is refused, cut off, or carries a line that is not JSON (a truncated event:
   * the caller watches again from the last resourceVersion it saw). `idleMs` without a byte ends it as a
   * failure: a server that died without closing the connection must not keep the informer waiting.
   */
  async watch(r: ApiRequest & { idleMs: number }, onEvent: (type: string, object: unknown) => void, onOpen?: () => void): Promise<void> {
    const { req, res, done } = await this.open(r);
    try {
      await this.stream(req, res, r, onEvent, onOpen);
    } finally {
      done();
      req.destroy();
    }
  }

  private async stream(
    req: ClientRequest,
    res: Promise<IncomingMessage>,
    r: ApiRequest & { idleMs: number },
    onEvent: (type: string, object: unknown) => void,
    onOpen?: () => void,
  ): Promise<void> {
    const timer = this.deadline(req, r.timeoutMs);
    const answer = await res;
    if (answer.statusCode !== 200) {
      let body = '';
      answer.setEncoding('utf8');
      for await (const c of answer) body += c;
      throw httpError(answer, body);
    }
    // The headers came: from now on only silence counts, not the request's deadline.
    timer.touch(r.idleMs);
    onOpen?.();
    await new Promise<void>((resolve, reject) => {
      let pending = '';
      let failed = false;
      const fail = (e: ApiError) => {
        if (failed) return;
        failed = true;
        req.destroy();
        reject(e);
      };
      answer.setEncoding('utf8');
      answer.on('data', (chunk: string) => {
        timer.touch(r.idleMs);
        pending += chunk;
        let nl: number;
        while (!failed && (nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (!line) continue;
          let ev: { type?: unknown; object?: unknown };
          try {
            ev = JSON.parse(line) as typeof ev;
          } catch {
            return fail(new ApiError(`a watch event that is not JSON (${line.length} bytes)`, 200));
          }
          if (typeof ev.type !== 'string') return fail(new ApiError('a watch event without a type', 200));
          try {
            onEvent(ev.type, ev.object);
          } catch (e) {
            // The caller ends the watch this way (an ERROR event: 410 Gone...).
            return fail(e instanceof ApiError ? e : new ApiError((e as Error).message));
          }
        }
      });
      answer.on('end', () => {
        if (pending.trim()) fail(new ApiError(`a watch event cut off (${pending.trim().length} bytes)`, 200));
        else if (!failed) resolve();
      });
      answer.on('error', (e: NodeJS.ErrnoException) => fail(new ApiError(r.signal?.aborted ? 'stopped' : networkCause(e))));
      answer.on('aborted', () => fail(new ApiError(r.signal?.aborted ? 'stopped' : 'the watch was cut off')));
      answer.on('close', () => {
        if (!answer.complete) fail(new ApiError(r.signal?.aborted ? 'stopped' : 'the watch was cut off'));
      });
    });
  }
}
