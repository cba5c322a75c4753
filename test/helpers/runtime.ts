// What a runtime (libcni) does with a conflist: per plugin, a config with the list's name and cniVersion,
// the previous plugin's result as prevResult, and runtimeConfig for the capabilities the plugin declares.
// ADD runs the plugins in order, DEL in reverse.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, type CniCall, type CniReply, REF_PLUGINS, ROOT, cni } from './netns.js';

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Record<string, any>[];
}

export function loadConflist(file: string, patch: (plugin: Record<string, any>) => void = () => {}): Conflist {
  const list = JSON.parse(readFileSync(join(ROOT, 'cni-conf', file), 'utf8')) as Conflist;
  list.plugins.forEach(patch);
  return list;
}

export const binFor = (type: string): string => (type === 'podwire' ? BIN : join(REF_PLUGINS, type));

export function pluginConf(list: Conflist, i: number, runtimeConfig: Record<string, unknown>, prevResult?: unknown): Record<string, unknown> {
  const { capabilities, ...plugin } = list.plugins[i]!;
  const rc = Object.fromEntries(Object.entries(runtimeConfig).filter(([k]) => capabilities?.[k]));
  return {
    ...plugin,
    cniVersion: list.cniVersion,
    name: list.name,
    ...(Object.keys(rc).length ? { runtimeConfig: rc } : {}),
    ...(prevResult ? { prevResult } : {}),
  };
}

/** ADD through the whole list; returns the last result, or the first failing reply. */
export async function addList(node: string, list: Conflist, call: Omit<CniCall, 'command'>, runtimeConfig: Record<string, unknown> = {}): Promise<CniReply> {
  let prev: unknown;
  let reply!: CniReply;
  for (let i = 0; i < list.plugins.length; i++) {
    reply = await cni(node, { ...call, command: 'ADD' }, pluginConf(list, i, runtimeConfig, prev), binFor(list.plugins[i]!.type));
    if (reply.code !== 0) return reply;
    prev = reply.json;
  }
  return reply;
}

export async function delList(node: string, list: Conflist, call: Omit<CniCall, 'command'>, prevResult: unknown, runtimeConfig: Record<string, unknown> = {}): Promise<CniReply[]> {
  const replies: CniReply[] = [];
  for (let i = list.plugins.length - 1; i >= 0; i--) {
    replies.push(await cni(node, { ...call, command: 'DEL' }, pluginConf(list, i, runtimeConfig, prevResult), binFor(list.plugins[i]!.type)));
  }
  return replies;
}
