// Executes another CNI plugin (a delegated IPAM such as host-local) the way a runtime would.
import { CniError, Code } from './errors.js';
import type { CniEnv } from './types.js';
import { validID } from './validate.js';
import { fs } from '../runtime/files.js';
import { run } from '../runtime/run.js';

export function findPlugin(type: string, path: readonly string[]): string {
  if (!validID(type)) throw new CniError(Code.InvalidConfig, `invalid network config: ipam.type: "${type}" is not a plugin name`);
  for (const dir of path) {
    const candidate = `${dir.replace(/\/$/, '')}/${type}`;
    try {
      fs().accessSync(candidate, fs().constants.X_OK);
      return candidate;
    } catch {
      // try the next directory
    }
  }
  throw new CniError(
    Code.InvalidConfig,
    `invalid network config: ipam.type: plugin "${type}" not found in CNI_PATH (${path.join(':') || 'empty'})`,
  );
}

/** Runs `type` with command and stdin; returns its parsed stdout, or throws its CNI error. */
export async function execPlugin(type: string, command: string, stdin: string, env: CniEnv): Promise<unknown> {
  const bin = findPlugin(type, env.path);
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    CNI_COMMAND: command,
    CNI_CONTAINERID: env.containerID,
    CNI_NETNS: env.netns,
    CNI_IFNAME: env.ifname,
    CNI_ARGS: Object.entries(env.args)
      .map(([k, v]) => `${k}=${v}`)
      .join(';'),
    CNI_PATH: env.path.join(':'),
  };
  const r = await run(bin, [], { input: stdin, env: childEnv });
  let parsed: unknown;
  try {
    parsed = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    parsed = undefined;
  }
  if (r.code === 0) return parsed;
  const e = parsed as { code?: number; msg?: string; details?: string } | undefined;
  if (e && typeof e.code === 'number') throw new CniError(e.code, `${type}: ${e.msg ?? 'failed'}`, e.details ?? '');
  throw new CniError(Code.Delegate, `${type} ${command} failed: ${(r.stderr || `exit ${r.code}`).trim()}`);
}
