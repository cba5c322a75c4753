// What a container runtime does with a conflist (libcni's behaviour, reduced to what the lab and tests
// need): per plugin, a config carrying the list's name and cniVersion, the previous plugin's result as
// prevResult and runtimeConfig for the capabilities it declares; ADD in order, DEL in reverse.
// Plugins are executed inside a node's network namespace with CNI_* env and the config on stdin.
import { join } from 'node:path';
import { run } from '../runtime/run.js';

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Record<string, any>[];
}

export interface Attach {
  containerID: string;
  netns: string;
  ifname?: string;
  args?: string;
  /** Set or remove (undefined) CNI_* variables, for tests of bad input. */
  env?: Record<string, string | undefined>;
}

export interface Reply {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

export interface Runner {
  /** The node's network namespace name. */
  node: string;
  /** Path of the podwire binary; other types are looked up in cniPath. */
  podwire: string;
  cniPath: string[];
}

export function binFor(r: Runner, type: string): string {
  return type === 'podwire' || type === 'podwire-ipam' ? r.podwire : join(r.cniPath[0] ?? '/opt/cni/bin', type);
}

/** Executes one plugin as a runtime does: `ip netns exec NODE plugin`, CNI_* env, config on stdin. */
export async function execCni(r: Runner, bin: string, command: string, a: Partial<Attach>, conf: unknown): Promise<Reply> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: command };
  const vars: Record<string, string | undefined> = {
    CNI_CONTAINERID: a.containerID,
    CNI_NETNS: a.netns,
    CNI_IFNAME: a.ifname ?? (a.containerID ? 'eth0' : undefined),
    CNI_ARGS: a.args,
    CNI_PATH: r.cniPath.join(':'),
    ...a.env,
  };
  for (const [k, v] of Object.entries(vars)) if (v !== undefined) env[k] = v;
  const stdin = typeof conf === 'string' ? conf : JSON.stringify(conf);
  const out = await run('ip', ['netns', 'exec', r.node, bin], { input: stdin, env });
  let json: unknown;
  try {
    json = out.stdout.trim() ? JSON.parse(out.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { ...out, json };
}

export function pluginConf(
  list: Conflist,
  i: number,
  runtimeConfig: Record<string, unknown>,
  prevResult?: unknown,
): Record<string, unknown> {
  // As libcni: the plugin's config as written (capabilities included), runtimeConfig only for what it declares.
  const plugin = list.plugins[i]!;
  const rc = Object.fromEntries(Object.entries(runtimeConfig).filter(([k]) => plugin.capabilities?.[k]));
  return {
    ...plugin,
    cniVersion: list.cniVersion,
    name: list.name,
    ...(Object.keys(rc).length ? { runtimeConfig: rc } : {}),
    ...(prevResult ? { prevResult } : {}),
  };
}

/** ADD through the whole list; returns the last result, or the first failing reply. */
export async function addList(r: Runner, list: Conflist, a: Attach, runtimeConfig: Record<string, unknown> = {}): Promise<Reply> {
  let prev: unknown;
  let reply!: Reply;
  for (let i = 0; i < list.plugins.length; i++) {
    reply = await execCni(r, binFor(r, list.plugins[i]!.type), 'ADD', a, pluginConf(list, i, runtimeConfig, prev));
    if (reply.code !== 0) return reply;
    prev = reply.json;
  }
  return reply;
}

/** DEL through the list in reverse; every plugin is called even if one fails. */
export async function delList(
  r: Runner,
  list: Conflist,
  a: Attach,
  prevResult: unknown,
  runtimeConfig: Record<string, unknown> = {},
): Promise<Reply[]> {
  const replies: Reply[] = [];
  for (let i = list.plugins.length - 1; i >= 0; i--) {
    replies.push(await execCni(r, binFor(r, list.plugins[i]!.type), 'DEL', a, pluginConf(list, i, runtimeConfig, prevResult)));
  }
  return replies;
}
