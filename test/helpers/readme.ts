// What README.zh-CN.md shows a learner, checked against what the tools print: each ```text block after a
// `<!-- output: KIND -->` comment holds lines the output of KIND must have. Addresses, ports, MACs, veth
// names and conntrack states differ from run to run; every other character must be there as written.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './netns.js';

/** The blocks of one kind ("lab", "path …"), each as its lines. */
export function readmeOutputs(kind: string, file = 'README.zh-CN.md'): string[][] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/<!-- output: ([^>]*?) -->\n```text\n([\s\S]*?)```/g)]
    .filter((m) => m[1]!.split(' ')[0] === kind)
    .map((m) => m[2]!.split('\n').filter((l) => l.trim()));
}

const TOKEN =
  /([0-9a-f]{2}(?::[0-9a-f]{2}){5})|(veth[0-9a-f]{8})|(TIME_WAIT|ESTABLISHED|SYN_SENT|SYN_RECV|FIN_WAIT|CLOSE_WAIT|CLOSE)|(\d+)|(\s+)|([\s\S])/g;

/** A line as a pattern: what changes between runs is a wildcard of its kind, the rest is literal. */
export function linePattern(line: string): RegExp {
  let re = '';
  for (const m of line.trimEnd().matchAll(TOKEN)) {
    if (m[1]) re += '[0-9a-f]{2}(?::[0-9a-f]{2}){5}';
    else if (m[2]) re += 'veth[0-9a-f]{8}';
    else if (m[3]) re += '[A-Z_]+';
    else if (m[4]) re += '\\d+';
    else if (m[5]) re += '\\s+';
    else re += m[6]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The lines of a block that no line of `output` matches. */
export function missingLines(block: readonly string[], output: string): string[] {
  const lines = output.split('\n').map((l) => l.trimEnd());
  return block.filter((b) => !lines.some((l) => linePattern(b).test(l)));
}
