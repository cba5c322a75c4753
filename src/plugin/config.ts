// Everything the plugins read from their config and their runtime, in one place: the podwire plugin's
// own keys (beside name/type/cniVersion/dns, checked by the skeleton, and ipam, by ipam/config.ts), and
// what a runtime asks per pod: CNI_ARGS IP=/MAC= (podman's --ip/--mac-address), runtimeConfig.ips/mac/
// portMappings (or args.cni.*), and GC's list of attachments. Checked before anything changes; a bad
// value is code 7 (or 4 for CNI_ARGS) naming the key.
import { invalidConfig, invalidEnv } from '../cni/errors.js';
import type { Attachment, Context, NetConf } from '../cni/types.js';
import { type FirewallBackend, type FirewallSetting, chooseFirewall, isFirewallSetting } from '../firewall/choose.js';
import type { PortMapping } from '../firewall/backend.js';
import { trySubnetFile } from '../nodestate/subnet-file.js';
import { validIfname } from '../kernel/names.js';
import { type Family, type IP, formatIP, parseIP, parseIPMaybeCidr } from '../net/ip.js';
import { validMac } from '../net/mac.js';

export const PLUGIN_TYPE = 'podwire';
export const DEFAULT_BRIDGE = 'cni0';
export const DEFAULT_MTU = 1500;

export interface BridgeConf {
  bridge: string;
  /** undefined: take it from the node subnet file, else DEFAULT_MTU. */
  mtu?: number;
  hairpinMode: boolean;
  isDefaultGateway: boolean;
  ipMasq: boolean;
  /** spoofChecks: each pod sends only as itself (guard/table.ts); on unless the config turns it off. */
  spoofChecks: boolean;
  /** firewallBackend: where hostPort and ipMasq rules go; undefined: the node's (subnet file), else auto. */
  firewall?: FirewallSetting;
}

function bool(conf: NetConf, key: string, dflt: boolean): boolean {
  const v = conf[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw invalidConfig(key, 'must be true or false');
  return v;
}

export function parseBridgeConf(conf: NetConf): BridgeConf {
  const bridge = conf.bridge ?? DEFAULT_BRIDGE;
  if (!validIfname(bridge)) throw invalidConfig('bridge', `"${String(bridge)}" is not a valid interface name`);
  const mtu = conf.mtu;
  if (mtu !== undefined && !(Number.isInteger(mtu) && (mtu as number) >= 576 && (mtu as number) <= 65535)) {
    throw invalidConfig('mtu', 'must be an integer from 576 to 65535');
  }
  if (conf.dns !== undefined && (typeof conf.dns !== 'object' || conf.dns === null)) throw invalidConfig('dns', 'must be an object');
  if (conf.ipam === undefined || typeof conf.ipam !== 'object') throw invalidConfig('ipam', 'missing');
  return {
    bridge,
    mtu: mtu as number | undefined,
    hairpinMode: bool(conf, 'hairpinMode', true),
    isDefaultGateway: bool(conf, 'isDefaultGateway', true),
    ipMasq: bool(conf, 'ipMasq', false),
    spoofChecks: bool(conf, 'spoofChecks', true),
    firewall: firewallSetting(conf.firewallBackend),
  };
}

/** The pod's MAC a runtime asked for: CNI_ARGS MAC= (podman --mac-address), runtimeConfig.mac or args.cni.mac. */
export function requestedMac(ctx: Context): string | undefined {
  const fromArgs = ctx.env.args.MAC;
  if (fromArgs !== undefined) {
    if (!validMac(fromArgs)) throw invalidEnv('CNI_ARGS', `MAC=${fromArgs} is not a unicast MAC address`);
    return fromArgs.toLowerCase();
  }
  for (const [key, v] of [
    ['runtimeConfig.mac', ctx.conf.runtimeConfig?.mac],
    ['args.cni.mac', (ctx.conf.args?.cni as Record<string, unknown> | undefined)?.mac],
  ] as const) {
    if (v === undefined) continue;
    if (!validMac(v)) throw invalidConfig(key, `"${String(v)}" is not a unicast MAC address`);
    return v.toLowerCase();
  }
  return undefined;
}

/** The address a runtime asked for, of `family`: CNI_ARGS IP= (podman --ip), runtimeConfig.ips, or args.cni.ips. */
export function requestedIP(ctx: Context, family: Family): IP | undefined {
  const fromArgs = ctx.env.args.IP;
  if (fromArgs !== undefined) {
    const ips = fromArgs.split(',').map((s) => ({ s, ip: parseIPMaybeCidr(s) }));
    const bad = ips.find((x) => !x.ip);
    if (bad) throw invalidEnv('CNI_ARGS', `IP=${bad.s} is not an IP address`);
    const match = ips.find((x) => x.ip!.family === family);
    if (match) return match.ip;
  }
  for (const [key, list] of [
    ['runtimeConfig.ips', ctx.conf.runtimeConfig?.ips],
    ['args.cni.ips', (ctx.conf.args?.cni as Record<string, unknown> | undefined)?.ips],
  ] as const) {
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw invalidConfig(key, 'must be a list of IP addresses');
    for (const s of list) {
      const ip = typeof s === 'string' ? parseIPMaybeCidr(s) : undefined;
      if (!ip) throw invalidConfig(key, `"${String(s)}" is not an IP address`);
      if (ip.family === family) return ip;
    }
  }
  return undefined;
}

const port = (v: unknown, field: string): number => {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535)
    throw invalidConfig(field, `must be a port number from 1 to 65535, not ${JSON.stringify(v)}`);
  return v as number;
};

/** runtimeConfig.portMappings as runtimes send it ({hostPort, containerPort, protocol?, hostIP?}), checked. */
/**
 * A field as Go's encoding/json finds it, which is what the reference plugins accept: the exact key, else
 * any key equal to it ignoring case. containerd's CRI (go-cni) sends each port mapping with Go's own
 * field names, {"HostPort", "ContainerPort", "Protocol", "HostIP"}; podman and CRI-O send hostPort...
 */
function goField(o: Record<string, unknown>, key: string): unknown {
  if (key in o) return o[key];
  const lower = key.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

export function parsePortMappings(v: unknown): PortMapping[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidConfig('runtimeConfig.portMappings', 'must be a list');
  return v.map((m: unknown, i): PortMapping => {
    const f = (k: string) => `runtimeConfig.portMappings[${i}].${k}`;
    if (typeof m !== 'object' || m === null) throw invalidConfig(`runtimeConfig.portMappings[${i}]`, 'must be an object');
    const o = m as Record<string, unknown>;
    const rawProtocol = goField(o, 'protocol');
    const protocol = String(rawProtocol || 'tcp').toLowerCase();
    if (protocol !== 'tcp' && protocol !== 'udp')
      throw invalidConfig(f('protocol'), `must be tcp or udp, not ${JSON.stringify(rawProtocol)}`);
    const mapping: PortMapping = {
      hostPort: port(goField(o, 'hostPort'), f('hostPort')),
      containerPort: port(goField(o, 'containerPort'), f('containerPort')),
      protocol,
    };
    const hostIP = goField(o, 'hostIP');
    // "", 0.0.0.0 and :: mean every address of the node.
    if (hostIP !== undefined && hostIP !== '' && hostIP !== '0.0.0.0') {
      const ip = typeof hostIP === 'string' && hostIP !== '::' ? parseIP(hostIP) : undefined;
      if (hostIP !== '::') {
        if (!ip) throw invalidConfig(f('hostIP'), `must be an address of this node, not ${JSON.stringify(hostIP)}`);
        mapping.hostIP = formatIP(ip);
      }
    }
    return mapping;
  });
}

/**
 * The ports the node itself needs, which no pod's hostPort may take: sshd, kubelet (10250, read-only
 * 10255), kube-proxy's health (10256), a control plane's API server (6443), etcd (2379-2380),
 * controller-manager (10257) and scheduler (10259), the VXLAN port (8472/udp) and podwire's status and
 * metrics (9471-9472). A config's "reservedHostPorts" replaces the list (["22/tcp", "30000-32767/tcp"]).
 */
export const NODE_PORTS = [
  '22/tcp',
  '6443/tcp',
  '2379-2380/tcp',
  '9471-9472/tcp',
  '10250/tcp',
  '10255/tcp',
  '10256/tcp',
  '10257/tcp',
  '10259/tcp',
  '8472/udp',
];

interface PortRange {
  from: number;
  to: number;
  protocol: 'tcp' | 'udp';
  text: string;
}

/** The config's reservedHostPorts, or NODE_PORTS; a bad entry is refused, naming it. */
export function reservedHostPorts(conf: NetConf): PortRange[] {
  const raw = conf.reservedHostPorts ?? NODE_PORTS;
  if (!Array.isArray(raw)) throw invalidConfig('reservedHostPorts', 'must be a list of "PORT/tcp", "PORT/udp" or "FROM-TO/PROTOCOL"');
  return raw.map((x: unknown, i) => {
    const m = typeof x === 'string' ? /^(\d{1,5})(?:-(\d{1,5}))?\/(tcp|udp)$/.exec(x) : null;
    const from = Number(m?.[1]);
    const to = Number(m?.[2] ?? m?.[1]);
    if (!m || from < 1 || to > 65535 || to < from)
      throw invalidConfig(`reservedHostPorts[${i}]`, `${JSON.stringify(x)} is not "PORT/tcp", "PORT/udp" or "FROM-TO/PROTOCOL"`);
    return { from, to, protocol: m[3] as 'tcp' | 'udp', text: x as string };
  });
}

/**
 * The node's ports are the node's: a hostPort on one the node needs, or a hostIP that is not one of the
 * node's addresses (`local`: read only when a hostIP is given), is refused before anything is made.
 */
export function checkNodePorts(mappings: readonly PortMapping[], reserved: readonly PortRange[], local: () => ReadonlySet<string>): void {
  let addrs: ReadonlySet<string> | undefined; // read once, and only for a hostIP
  mappings.forEach((m, i) => {
    const r = reserved.find((x) => x.protocol === m.protocol && m.hostPort >= x.from && m.hostPort <= x.to);
    if (r)
      throw invalidConfig(
        `runtimeConfig.portMappings[${i}].hostPort`,
        `${m.hostPort}/${m.protocol} is a port the node itself needs (${r.text} in reservedHostPorts): choose another hostPort`,
      );
    if (m.hostIP && !(addrs ??= local()).has(m.hostIP))
      throw invalidConfig(`runtimeConfig.portMappings[${i}].hostIP`, `${m.hostIP} is not an address of this node`);
  });
}

/**
 * Whether the attachment may have hostPort rules to remove (finding them costs an iptables-save). Runtimes
 * send DEL the runtimeConfig they sent ADD (libcni injects capability arguments on every verb; containerd
 * and CRI-O pass the sandbox's port mappings again), so an empty or null portMappings means ADD made none:
 * the reference portmap plugin relies on the same. A DEL without the key at all, from a config that
 * declares the capability, looks anyway. (GC and reclaim, removing other attachments, always look.)
 */
export function mayHaveHostports(ctx: Context): boolean {
  const rc = ctx.conf.runtimeConfig;
  if (rc && 'portMappings' in rc) return Array.isArray(rc.portMappings) && rc.portMappings.length > 0;
  return (ctx.conf.capabilities as Record<string, unknown> | undefined)?.portMappings === true;
}

/** GC's list of attachments still in use (spec 1.1 name, and the older one libcni also sends). */
export function validAttachments(ctx: Context): Attachment[] {
  const raw = ctx.conf['cni.dev/valid-attachments'] ?? ctx.conf['cni.dev/attachments'] ?? [];
  if (!Array.isArray(raw)) throw invalidConfig('cni.dev/valid-attachments', 'must be a list');
  return raw.map((a: { containerID?: unknown; ifname?: unknown }, i) => {
    if (typeof a?.containerID !== 'string' || typeof a?.ifname !== 'string') {
      throw invalidConfig(`cni.dev/valid-attachments[${i}]`, 'needs containerID and ifname');
    }
    return { containerID: a.containerID, ifname: a.ifname };
  });
}

function firewallSetting(v: unknown): FirewallSetting | undefined {
  if (v === undefined) return undefined;
  if (!isFirewallSetting(v)) throw invalidConfig('firewallBackend', `must be "auto", "nftables" or "iptables", not ${JSON.stringify(v)}`);
  return v;
}

/**
 * The backend this pod's nat rules go to (firewall/choose.ts, the one choice node up and doctor make too):
 * the config's firewallBackend; else what node up decided for the node (the subnet file's "firewall", so
 * the plugin and the node's rules agree); else nftables when `nft` is installed, iptables when not (a few
 * stat calls; nothing is run).
 */
export function firewallFor(conf: NetConf, bc: BridgeConf): FirewallBackend {
  const file = subnetFileOf(conf);
  return chooseFirewall(bc.firewall, () => (file ? trySubnetFile(file)?.firewall : undefined)).backend;
}

/** The node subnet file the IPAM config names (an absolute path), when it names one. */
export function subnetFileOf(conf: NetConf): string | undefined {
  const file = (conf.ipam as Record<string, unknown> | undefined)?.subnetFile;
  return typeof file === 'string' && file.startsWith('/') ? file : undefined;
}
