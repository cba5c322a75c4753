// The shared skeleton every podwire plugin runs in: CNI_* env, config on stdin, version rules, the
// result or error JSON on stdout, exit code, and one log line per call. Plugins only write verb logic.
import { CniError, Code, asCniError, invalidConfig } from './errors.js';
import { COMMANDS, readEnv } from './env.js';
import type { Context, NetConf, Plugin } from './types.js';
import { Trace, traceTarget } from './trace.js';
import { LATEST, SUPPORTED_VERSIONS, convertResult, isSupported, parseResult, requireVersionFor, versionReply } from './version.js';
import { validAbsPath, validID } from './validate.js';
import { configureLog, DEFAULT_LOG_FILE, log, validLogLevel } from '../runtime/log.js';
import { readStdin, writeStdout } from '../runtime/stdio.js';
import { profileSoFar, timed } from '../runtime/profile.js';
import { sys } from '../runtime/files.js';

export interface SkelOptions {
  /** CNI_ARGS keys the plugin understands; others need IgnoreUnknown=1. */
  knownArgs: readonly string[];
  env?: NodeJS.ProcessEnv;
  stdin?: () => string | Promise<string>;
  stdout?: (s: string) => void | Promise<void>;
}

/** Decodes and checks the keys every plugin config shares (SPEC "Network configuration"). */
export function parseNetConf(stdin: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(Code.Decode, `cannot decode network config from stdin: ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CniError(Code.Decode, 'cannot decode network config from stdin: not a JSON object');
  }
  const conf = raw as NetConf;
  if (conf.cniVersion === undefined) throw invalidConfig('cniVersion', 'missing');
  if (!isSupported(conf.cniVersion)) {
    throw new CniError(
      Code.IncompatibleVersion,
      `incompatible CNI version: cniVersion "${String(conf.cniVersion)}" is not one of ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  if (!validID(conf.name)) throw invalidConfig('name', 'must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$');
  if (typeof conf.type !== 'string' || conf.type === '') throw invalidConfig('type', 'missing');
  if (conf.logFile !== undefined && !validAbsPath(conf.logFile)) throw invalidConfig('logFile', 'must be an absolute path');
  if (conf.logLevel !== undefined && !validLogLevel(conf.logLevel)) throw invalidConfig('logLevel', 'unknown level');
  if (conf.prevResult !== undefined) conf.prevResult = parseResult(conf.prevResult);
  return conf;
}

/** Runs one CNI call and returns the process exit code. */
export async function runSkel(plugin: Plugin, opts: SkelOptions): Promise<number> {
  const env = opts.env ?? process.env;
  const write = opts.stdout ?? ((s: string) => writeStdout(s + '\n'));
  const started = performance.now();
  let cniVersion = LATEST;
  let command = env.CNI_COMMAND ?? '';
  const fields: Record<string, unknown> = { cmd: command };
  let trace: Trace | undefined;
  try {
    if (!(COMMANDS as readonly string[]).includes(command)) readEnv(env, opts.knownArgs); // throws, naming CNI_COMMAND
    if (command === 'VERSION') {
      await write(versionReply());
      return 0;
    }
    // While stdin arrives, the file calls the verbs make later are bound (files.ts: ~1 ms of this
    // thread's time, otherwise spent in the middle of ADD); reading stdin leaves this thread idle.
    const reading = timed('read stdin', () => (opts.stdin ?? readStdin)());
    timed('bind libc', () => sys());
    const stdin = await reading;
    const conf = timed('parse config', () => parseNetConf(stdin));
    cniVersion = conf.cniVersion;
    timed('open log', () =>
      configureLog((conf.logFile as string | undefined) ?? DEFAULT_LOG_FILE, (conf.logLevel as string | undefined) ?? 'info'),
    );
    log.debug({ ms: +(performance.now() - started).toFixed(2), sinceStart: +performance.now().toFixed(2) }, 'config read, log open');
    const cniEnv = readEnv(env, opts.knownArgs);
    command = cniEnv.command;
    // netns and CNI_ARGS are logged as the runtime sent them (an empty netns on DEL is worth seeing).
    const attach = command === 'ADD' || command === 'DEL' || command === 'CHECK';
    Object.assign(fields, {
      net: conf.name,
      containerID: cniEnv.containerID || undefined,
      ifname: cniEnv.ifname || undefined,
      netns: attach ? cniEnv.netns : undefined,
      args: env.CNI_ARGS || undefined,
      // Kubernetes runtimes name the pod in CNI_ARGS: an operator greps the log for a pod, not an ID.
      pod: cniEnv.args.K8S_POD_NAME || undefined,
      podNamespace: cniEnv.args.K8S_POD_NAMESPACE || undefined,
    });
    requireVersionFor(command, conf.cniVersion);
    const ctx: Context = { env: cniEnv, conf, stdin };
    const target = traceTarget(env.PODWIRE_TRACE, conf.trace);
    if (target && (command === 'ADD' || command === 'DEL')) {
      const p = { command, containerID: cniEnv.containerID, ifname: cniEnv.ifname, network: conf.name, netns: cniEnv.netns || '-' };
      trace = ctx.trace = new Trace(target, { id: 'trace.title', p }, env);
    }
    switch (command) {
      case 'ADD': {
        const result = await plugin.add(ctx);
        fields.ips = result.ips?.map((ip) => ip.address);
        await timed('write result', () => write(JSON.stringify(convertResult(result, conf.cniVersion))));
        break;
      }
      case 'DEL':
        await plugin.del(ctx);
        break;
      case 'CHECK':
        await plugin.check(ctx);
        break;
      case 'GC':
        await plugin.gc(ctx);
        break;
      case 'STATUS':
        await plugin.status(ctx);
        break;
    }
    const ms = +(performance.now() - started).toFixed(2);
    log.info({ ...fields, outcome: 'ok', ms, profile: profileSoFar() }, `${command} ok`);
    await trace?.write({ id: 'trace.ok', p: { command, ms, ips: fields.ips ? `: ${(fields.ips as string[]).join(', ')}` : '' } });
    return 0;
  } catch (e) {
    const err = asCniError(e);
    await write(JSON.stringify(err.toJSON(cniVersion)));
    log.error(
      {
        ...fields,
        outcome: 'error',
        code: err.code,
        err: err.message,
        ms: +(performance.now() - started).toFixed(2),
        profile: profileSoFar(),
      },
      `${command} failed`,
    );
    await trace?.write({ id: 'trace.error', p: { command, code: err.code, message: err.message } });
    return 1;
  }
}
