// Which iptables to run. On a host, `iptables` is whatever the host uses. In the agent's container image
// both backends are installed (Debian's iptables-legacy and iptables-nft), and the agent must write its
// rules where the host's other rules are (kube-proxy's, the plugin's, run on the host): it picks the
// backend as kube-proxy's image does (iptables-wrapper), by which of the two holds more rules.
import { run } from '../runtime/run.js';

export type Backend = 'legacy' | 'nft';
let backend: Backend | undefined;

/** From now on, this process runs iptables-legacy* or iptables-nft* instead of plain iptables*. */
export function useIptablesBackend(b: Backend | undefined): void {
  backend = b;
}

/** The command for `tool` ("iptables", "ip6tables") with `suffix` ("", "-save", "-restore"). */
export const iptablesCmd = (tool: 'iptables' | 'ip6tables', suffix: '' | '-save' | '-restore' = ''): string =>
  backend ? `${tool}-${backend}${suffix}` : `${tool}${suffix}`;

const countRules = async (b: Backend): Promise<number | undefined> => {
  const r = await run(`iptables-${b}-save`, []).catch(() => undefined);
  return r && r.code === 0 ? r.stdout.split('\n').filter((l) => l.startsWith('-A ')).length : undefined;
};

/** The host's backend and why: the one with more rules; with none anywhere, the plain `iptables`'s own. */
export async function detectIptablesBackend(): Promise<{ backend: Backend; why: string }> {
  const [legacy, nft] = await Promise.all([countRules('legacy'), countRules('nft')]);
  if (legacy === undefined && nft === undefined) {
    const v = await run('iptables', ['-V']).catch(() => undefined);
    const b: Backend = /legacy/.test(v?.stdout ?? '') ? 'legacy' : 'nft';
    return { backend: b, why: `only plain iptables here (${(v?.stdout ?? '?').trim()})` };
  }
  if ((legacy ?? 0) > (nft ?? 0)) return { backend: 'legacy', why: `the host's rules are there (${legacy} legacy, ${nft ?? 0} nf_tables)` };
  if ((nft ?? 0) > 0) return { backend: 'nft', why: `the host's rules are there (${nft} nf_tables, ${legacy ?? 0} legacy)` };
  const v = await run('iptables', ['-V']).catch(() => undefined);
  const b: Backend = /legacy/.test(v?.stdout ?? '') ? 'legacy' : 'nft';
  return { backend: b, why: `no rules yet in either: the default here (${(v?.stdout ?? '?').trim()})` };
}
