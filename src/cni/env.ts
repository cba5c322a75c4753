// Reads and validates the CNI_* environment for one verb.
import { invalidEnv, CniError, Code } from './errors.js';
import type { CniEnv } from './types.js';
import { validIfname } from '../kernel/names.js';
import { validID, validNetnsPath } from './validate.js';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'] as const;

/**
 * CNI_ARGS is "K=V;K=V". Unknown keys are an error unless IgnoreUnknown is set (podman and kubelet
 * send K8S_POD_NAME and friends with IgnoreUnknown=1).
 */
export function parseCniArgs(raw: string, known: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const pair of raw.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalidEnv('CNI_ARGS', `"${pair}" is not KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const ignore = /^(1|true)$/i.test(out.IgnoreUnknown ?? '');
  if (!ignore) {
    const unknown = Object.keys(out).filter((k) => k !== 'IgnoreUnknown' && !known.includes(k));
    if (unknown.length) {
      throw new CniError(Code.UnsupportedField, `CNI_ARGS: unknown key(s) ${unknown.join(', ')} (set IgnoreUnknown=1 to ignore)`);
    }
  }
  return out;
}

/** Which variables each verb needs (SPEC "Parameters"); DEL tolerates an empty CNI_NETNS. */
const REQUIRED: Record<string, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
};

export function readEnv(e: NodeJS.ProcessEnv, knownArgs: readonly string[]): CniEnv {
  const command = e.CNI_COMMAND ?? '';
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw invalidEnv('CNI_COMMAND', `"${command}" is not one of ${COMMANDS.join(', ')}`);
  }
  for (const name of REQUIRED[command] ?? []) {
    if (!e[name]) throw invalidEnv(name, 'missing');
  }
  const attach = command in REQUIRED;
  const containerID = attach ? e.CNI_CONTAINERID! : '';
  const ifname = attach ? e.CNI_IFNAME! : '';
  const netns = attach ? (e.CNI_NETNS ?? '') : '';
  if (attach && !validID(containerID)) {
    throw invalidEnv('CNI_CONTAINERID', `"${containerID}" must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`);
  }
  if (attach && !validIfname(ifname)) {
    throw invalidEnv('CNI_IFNAME', `"${ifname}" must be 1-15 bytes without '/', ':' or whitespace, not "." or ".."`);
  }
  if (netns !== '' && !validNetnsPath(netns)) {
    throw invalidEnv('CNI_NETNS', `"${netns}" must be an absolute path without whitespace or quotes`);
  }
  return {
    command,
    containerID,
    netns,
    ifname,
    args: attach ? parseCniArgs(e.CNI_ARGS ?? '', knownArgs) : {},
    path: (e.CNI_PATH ?? '').split(':').filter((p) => p.startsWith('/')),
  };
}
