// Per-pod nat chains (masquerade, hostPort): added with one iptables-restore --noflush (atomic), and
// removed the same way — every rule that jumps to the chain or carries its name in a comment, then the
// chain itself — so DEL removes exactly what its ADD added, found from the live table.
import { commandFailed } from './errors.js';
import { iptablesCmd } from './iptables.js';
import { run } from '../run.js';

const tool = (v6: boolean) => (v6 ? 'ip6tables' : 'iptables');
const cmd = (v6: boolean, suffix: '' | '-save' | '-restore') => iptablesCmd(tool(v6), suffix);

export async function restoreNat(v6: boolean, rules: string[]): Promise<void> {
  const r = await run(cmd(v6, '-restore'), ['--noflush', '--wait'], { input: ['*nat', ...rules, 'COMMIT', ''].join('\n') });
  if (r.code !== 0) throw commandFailed(`${tool(v6)}-restore`, r.stderr);
}

export async function saveNat(v6: boolean): Promise<string[]> {
  const saved = await run(cmd(v6, '-save'), ['-t', 'nat']);
  if (saved.code !== 0) throw commandFailed(`${tool(v6)}-save`, saved.stderr);
  return saved.stdout.split('\n');
}

/** The lines that remove a chain and every rule pointing at it or naming it; pure, from iptables-save. */
export function delChainLines(saved: readonly string[], chain: string): string[] {
  const refs = saved
    .filter((l) => l.startsWith('-A ') && !l.startsWith(`-A ${chain} `) && (l.endsWith(`-j ${chain}`) || l.includes(`"podwire: ${chain}"`)))
    .map((l) => '-D' + l.slice(2));
  const exists = saved.some((l) => l.startsWith(`:${chain} `));
  return [...refs, ...(exists ? [`-F ${chain}`, `-X ${chain}`] : [])];
}

/**
 * Removes the chains and everything that refers to them, with one save and one restore; nothing to remove
 * is fine. Returns the lines applied.
 */
export async function delChains(chains: readonly string[], v6: boolean): Promise<string[]> {
  if (!chains.length) return [];
  const saved = await saveNat(v6);
  const lines = chains.flatMap((c) => delChainLines(saved, c));
  if (lines.length) await restoreNat(v6, lines);
  return lines;
}

/** iptables-restore lines as the single iptables commands that do the same (for the trace). */
export function natCommands(v6: boolean, lines: readonly string[]): string {
  const t = `${tool(v6)} -t nat`;
  return lines.map((l) => (l.startsWith(':') ? `${t} -N ${l.slice(1).split(' ')[0]}` : `${t} ${l}`)).join('\n');
}
