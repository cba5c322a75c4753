// What a node's nat and firewall tables say of Services and hostPorts, for the pictures (`diagram`,
// `podwire web`), whichever way they are written: kube-proxy's Services in iptables mode (the nat table)
// or nftables mode (table `ip kube-proxy`), and podwire's hostPorts on either of its backends (table
// `inet podwire`, or the PW-HP- chains of the nat table). IPv4: the pictures draw one family.
import { parseTable } from '../firewall/nftables.js';
import { listNftTable } from '../kernel/nft-json.js';
import { podRulesFromSave, readNat } from '../nat/chains.js';
import { type ServiceView, parseNat, servicesOf } from '../nat/walk-iptables.js';
import { servicesOfNft } from '../nat/walk-nftables.js';

export type { ServiceView } from '../nat/walk-iptables.js';

export interface NodePicture {
  services: ServiceView[];
  /** Per Pod IP: its hostPorts ("8081/tcp → 8080", "192.168.50.11:53/udp → 53"). */
  hostPorts: Record<string, string[]>;
}

/** One node's Services and hostPorts, read at once: three reads in parallel, none needed to exist. */
export async function pictureIn(ns: string): Promise<NodePicture> {
  const [nat, kubeProxy, podwire] = await Promise.all([
    readNat(false, ns || undefined),
    listNftTable('ip', 'kube-proxy', ns || undefined),
    listNftTable('inet', 'podwire', ns || undefined),
  ]);
  const hostPorts: Record<string, string[]> = {};
  for (const p of [...parseTable(podwire ?? {}).pods, ...podRulesFromSave(nat.split('\n'))])
    for (const m of p.mappings)
      (hostPorts[p.ip] ??= []).push(`${m.hostIP ? `${m.hostIP}:` : ''}${m.hostPort}/${m.protocol} → ${m.containerPort}`);
  return { services: [...servicesOf(parseNat(nat)), ...servicesOfNft(kubeProxy)], hostPorts };
}

/**
 * The Services of several nodes, each once: every node holds every Cluster IP, but an
 * externalTrafficPolicy Local nodePort only where its backend runs, so its nodePort comes from any node.
 */
export function eachServiceOnce(pictures: readonly NodePicture[]): ServiceView[] {
  const once = new Map<string, ServiceView>();
  for (const s of pictures.flatMap((p) => p.services)) {
    const k = `${s.clusterIP} ${s.proto} ${s.port}`;
    const seen = once.get(k);
    if (!seen) once.set(k, { ...s });
    else seen.nodePort ??= s.nodePort;
  }
  return [...once.values()];
}
