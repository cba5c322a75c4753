// What a node's nat and firewall tables say of Services and hostPorts, for the pictures (`diagram`,
// `podwire web`), whichever way they are written: kube-proxy's Services in iptables mode (the nat table)
// or nftables mode (table `ip kube-proxy`), and podwire's hostPorts on either of its backends (table
// `inet podwire`, or the PW-HP- chains of the nat table). IPv4: the pictures draw one family.
import { parseTable } from '../firewall/nftables.js';
import { iptablesCmd } from '../firewall/iptables.js';
import { listNftTable } from '../kernel/nft-json.js';
import { podRulesFromSave } from '../nat/chains.js';
import { type ServiceView, parseNat, servicesOf } from '../nat/walk-iptables.js';
import { servicesOfNft } from '../nat/walk-nftables.js';
import { run } from '../runtime/run.js';

export type { ServiceView } from '../nat/walk-iptables.js';

export interface NodePicture {
  services: ServiceView[];
  /** Per Pod IP: its hostPorts ("8081/tcp → 8080", "192.168.50.11:53/udp → 53"). */
  hostPorts: Record<string, string[]>;
}

/** The nat table as iptables-save prints it, in `ns` or here; '' where there is no iptables. */
async function natSave(ns: string): Promise<string> {
  const cmd = iptablesCmd('iptables', '-save');
  try {
    const r = await (ns ? run('ip', ['netns', 'exec', ns, cmd, '-t', 'nat']) : run(cmd, ['-t', 'nat']));
    return r.code === 0 ? r.stdout : '';
  } catch {
    return ''; // not installed: an nftables-only node
  }
}

/** One node's Services and hostPorts, read at once: three reads in parallel, none needed to exist. */
export async function pictureIn(ns: string): Promise<NodePicture> {
  const [nat, kubeProxy, podwire] = await Promise.all([
    natSave(ns),
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
