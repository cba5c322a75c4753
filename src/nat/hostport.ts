// hostPort without the portmap plugin: runtimeConfig.portMappings (sent when the plugin's config declares
// capabilities.portMappings) become DNAT rules from the node's hostPort to the pod's containerPort.
import { familyOf } from '../net/ip.js';
//
//   nat PREROUTING / OUTPUT  -m addrtype --dst-type LOCAL -> PODWIRE-HOSTPORTS     (shared, made once)
//   PODWIRE-HOSTPORTS        -> PW-HP-<hash>    one jump per attachment, commented with the chain's name
//   PW-HP-<hash>             -p tcp --dport 8080 [-d hostIP] -j DNAT --to-destination POD:80
//   nat POSTROUTING          -> PODWIRE-HOSTPORT-MASQ                                (shared, made once)
//   PODWIRE-HOSTPORT-MASQ    from the pod's own subnet to POD:80 after DNAT -> MASQUERADE
//
// The masquerade makes hairpin work (a pod reaching itself, or a pod on the same bridge, through
// NodeIP:hostPort): without it the reply would go straight back over the bridge from the pod's address,
// and the client, which spoke to NodeIP, would drop it. Clients elsewhere keep their source address.
// The same in ip6tables for a pod's IPv6 address (a dual-stack pod's hostPort answers on both families
// unless its hostIP names one). DEL and GC remove the attachment's chain and every rule naming it
// (src/nat/chains.ts).
// The mappings arrive checked: the plugin reads runtimeConfig (src/plugin/config.ts).
import { run } from '../runtime/run.js';
import { natCommands, restoreNat, saveNat } from './chains.js';
import { commandFailed } from '../kernel/errors.js';
import { iptablesCmd } from '../firewall/iptables.js';
import type { Step } from '../kernel/step.js';

import type { PortMapping } from '../firewall/rules.js';
export type { PortMapping } from '../firewall/rules.js';

export const HOSTPORTS = 'PODWIRE-HOSTPORTS';
export const HOSTPORT_MASQ = 'PODWIRE-HOSTPORT-MASQ';

/** The iptables-restore lines for one attachment's mappings, in the family of podIP (pure). */
export function hostportLines(chain: string, mappings: readonly PortMapping[], podIP: string, podSubnet: string): string[] {
  const v6 = familyOf(podIP) === 6;
  const tag = `-m comment --comment "podwire: ${chain}"`;
  const lines = [`:${chain} - [0:0]`];
  // ip6tables writes a DNAT target's address in brackets, as a URL does.
  const to = v6 ? `[${podIP}]` : podIP;
  const host = v6 ? 128 : 32;
  for (const m of mappings) {
    const dst = m.hostIP ? ` -d ${m.hostIP}/${host}` : '';
    lines.push(
      `-A ${chain}${dst} -p ${m.protocol} -m ${m.protocol} --dport ${m.hostPort} -j DNAT --to-destination ${to}:${m.containerPort}`,
    );
  }
  lines.push(`-A ${HOSTPORTS} ${tag} -j ${chain}`);
  for (const m of mappings) {
    lines.push(
      `-A ${HOSTPORT_MASQ} -s ${podSubnet} -d ${podIP}/${host} -p ${m.protocol} -m ${m.protocol} --dport ${m.containerPort} ` +
        `-m conntrack --ctstate DNAT ${tag} -j MASQUERADE`,
    );
  }
  return lines;
}

/**
 * The shared chains and their jumps, made once per node. Made with separate iptables calls, not declared
 * in a restore: declaring an existing chain in `iptables-restore --noflush` flushes it, which would drop
 * the jumps a concurrent ADD just added.
 */
async function ensureSharedChains(saved: readonly string[], v6: boolean): Promise<string[]> {
  const tool = v6 ? 'ip6tables' : 'iptables';
  const need: [string, string, string[]][] = [
    [HOSTPORTS, 'PREROUTING', ['-m', 'addrtype', '--dst-type', 'LOCAL']],
    [HOSTPORTS, 'OUTPUT', ['-m', 'addrtype', '--dst-type', 'LOCAL']],
    [HOSTPORT_MASQ, 'POSTROUTING', []],
  ];
  const done: string[] = [];
  const iptables = async (args: string[], ok: (stderr: string) => boolean = () => false): Promise<void> => {
    const r = await run(iptablesCmd(tool), ['-w', '-t', 'nat', ...args]);
    if (r.code !== 0 && !ok(r.stderr)) throw commandFailed(`${tool} ${args.join(' ')}`, r.stderr);
    if (r.code === 0) done.push(`${tool} -t nat ${args.join(' ')}`);
  };
  for (const [chain, from, match] of need) {
    // "exists" is fine: a concurrent ADD made it first.
    if (!saved.some((l) => l.startsWith(`:${chain} `))) await iptables(['-N', chain], (e) => /exists/i.test(e));
    const rule = [...match, '-j', chain];
    if (saved.includes(`-A ${from} ${rule.join(' ')}`)) continue;
    if ((await run(iptablesCmd(tool), ['-w', '-t', 'nat', '-C', from, ...rule])).code !== 0) await iptables(['-A', from, ...rule]);
  }
  return done;
}

/** Returns what was done, as single iptables commands: the shared chains when this ADD made them, then the attachment's rules. */
export async function addHostports(chain: string, mappings: readonly PortMapping[], podIP: string, podSubnet: string): Promise<string[]> {
  const v6 = familyOf(podIP) === 6;
  const shared = await ensureSharedChains(await saveNat(v6), v6);
  const lines = hostportLines(chain, mappings, podIP, podSubnet);
  await restoreNat(v6, lines);
  return [...shared, natCommands(v6, lines)];
}

/** The trace's account of addHostports. */
export const hostportStep = (mappings: readonly PortMapping[], podIP: string, commands: string[]): Step => ({
  id: 'hostports',
  p: {
    podIP,
    mappings: mappings.map((m) => ({
      id: 'part.hostport',
      p: { hostPort: m.hostPort, protocol: m.protocol, containerPort: m.containerPort },
    })),
  },
  cmd: commands.join('\n'),
});
