// A node switched from one firewall backend to the other (the agent restarted with another --firewall):
// its running pods' rules are moved, so their hostPorts keep answering, and nothing of the other backend
// stays. The new backend's rules go in first, then the old ones are removed: for a moment both DNAT the
// same hostPort to the same pod, which is harmless (the first nat chain that maps a connection wins).
import { delChainGroup, podRulesFromSave, saveNat } from '../nat/chains.js';
import { removeNodeRules } from './node-iptables.js';
import { HOSTPORTS, HOSTPORT_MASQ, addHostports } from '../nat/hostport.js';
import { addMasq } from '../nat/masq.js';
import { NFT_TABLE, addPodElements, nftDeleteTable, readTable } from './nftables.js';
import { onPath } from '../kernel/tools.js';

type Family = 4 | 6;

/** Moves every pod's iptables chains into nftables elements, then removes podwire's iptables rules. */
export async function iptablesToNftables(families: readonly Family[]): Promise<string[]> {
  if (!onPath('iptables')) return [];
  const changes: string[] = [];
  for (const f of families) {
    const v6 = f === 6;
    const saved = await saveNat(v6).catch(() => undefined);
    if (!saved) continue;
    const pods = podRulesFromSave(saved).filter((p) => p.subnet);
    if (pods.length) {
      await addPodElements(pods);
      changes.push(`${pods.length} pod address(es) moved from ${v6 ? 'ip6tables' : 'iptables'} to nftables`);
    }
    const chains = saved.flatMap((l) => (/^:(PW-(HP|MASQ)-[0-9a-f]{16}) /.exec(l)?.[1] ? [l.slice(1).split(' ')[0]!] : []));
    const shared = [HOSTPORTS, HOSTPORT_MASQ].filter((c) => saved.some((l) => l.startsWith(`:${c} `)));
    if (chains.length || shared.length) {
      await delChainGroup([...chains, ...shared], v6);
      changes.push(`${v6 ? 'ip6tables' : 'iptables'}: ${chains.length + shared.length} podwire nat chain(s) removed`);
    }
  }
  changes.push(...(await removeNodeRules(families)).map((x) => `${x} removed (now in nftables)`));
  return changes;
}

/** Moves every pod's nftables elements into iptables chains, then deletes podwire's nftables table. */
export async function nftablesToIptables(): Promise<string[]> {
  if (!onPath('nft')) return [];
  const t = await readTable();
  if (!t) return [];
  const pods = t.pods.filter((p) => p.subnet);
  for (const p of pods) {
    if (p.masq) await addMasq(`PW-MASQ-${p.owner}`, p.ip, p.subnet);
    if (p.mappings.length) await addHostports(`PW-HP-${p.owner}`, p.mappings, p.ip, p.subnet);
  }
  await nftDeleteTable(NFT_TABLE);
  return [
    ...(pods.length ? [`${pods.length} pod address(es) moved from nftables to iptables`] : []),
    'nftables table inet podwire removed (now in iptables)',
  ];
}
