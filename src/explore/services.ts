// What a node's nat and firewall tables say of Services and hostPorts, for the pictures (`diagram`,
// `podwire web`): kube-proxy's Services (iptables mode) and podwire's own hostPorts (nftables).
import { parseTable } from '../firewall/nftables.js';
import { listNftTable } from '../kernel/nft-json.js';
import { type ServiceView, parseNat, servicesOf } from '../nat/walk-iptables.js';
import { run } from '../runtime/run.js';

export type { ServiceView } from '../nat/walk-iptables.js';

/** A node's Services as its nat table holds them (none where kube-proxy runs in nftables mode, for now). */
export async function servicesIn(ns: string): Promise<ServiceView[]> {
  const r = await (ns ? run('ip', ['netns', 'exec', ns, 'iptables-save', '-t', 'nat']) : run('iptables-save', ['-t', 'nat']));
  return r.code === 0 ? servicesOf(parseNat(r.stdout)) : [];
}

/** A node's hostPorts as podwire's nftables table holds them: "Pod IP" -> ["8081/tcp → 8080"]. */
export async function hostPortsIn(ns: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const p of parseTable((await listNftTable('inet', 'podwire', ns || undefined)) ?? {}).pods)
    for (const m of p.mappings)
      (out[p.ip] ??= []).push(`${m.hostIP ? `${m.hostIP}:` : ''}${m.hostPort}/${m.protocol} → ${m.containerPort}`);
  return out;
}
