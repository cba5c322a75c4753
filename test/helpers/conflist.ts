// Conflists from cni-conf/, executed by the lab's runtime logic (src/lab/runtime.ts) with dist/podwire
// and the reference plugins.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Attach, type Conflist, type Reply, type Runner, addList as add, delList as del } from '../../src/lab/runtime.js';
import { BIN, REF_PLUGINS, ROOT } from './netns.js';

export function loadConflist(file: string, patch: (plugin: Record<string, any>) => void = () => {}): Conflist {
  const list = JSON.parse(readFileSync(join(ROOT, 'cni-conf', file), 'utf8')) as Conflist;
  list.plugins.forEach(patch);
  return list;
}

const runner = (node: string): Runner => ({ node, podwire: BIN, cniPath: [REF_PLUGINS] });

export const addList = (node: string, list: Conflist, a: Attach, rc: Record<string, unknown> = {}): Promise<Reply> =>
  add(runner(node), list, a, rc);

export const delList = (node: string, list: Conflist, a: Attach, prev: unknown, rc: Record<string, unknown> = {}): Promise<Reply[]> =>
  del(runner(node), list, a, prev, rc);
