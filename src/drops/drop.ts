// A dropped packet explained: which of podwire's rules dropped it (a spoofing check, the VXLAN port, a
// NetworkPolicy, the gate), the pod it names — the one that sent it, found by its port, whatever it
// forged; or the one it was for or from, found by an address past the checks — and the packet itself.
// Values here; the words are made where they are printed (dropText, in the reader's language).
import { GUARD_PREFIX, type Binding, portOfId } from '../guard/table.js';
import { formatIP, parseIP } from '../net/ip.js';
import { type MessageId, t } from '../i18n/index.js';
import type { RawDrop } from './ulogd.js';

export const DROP_REASONS = ['mac', 'arp', 'ip4', 'ip6', 'ra', 'na', 'ethertype', 'vxlan', 'ingress', 'egress', 'held'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface Drop {
  /** ISO time. */
  time: string;
  reason: DropReason;
  /** The pod it names ("namespace/name"), when known. */
  pod?: string;
  /** The port its sender is on (spoofing checks): podwire's host veth. */
  port?: string;
  /** That port's own addresses and MAC (its binding): what the pod may send as. */
  own?: string[];
  mac?: string;
  /** The policies that isolate the pod in that direction (namespace/name). */
  policies?: string[];
  /** "udp", "tcp", "icmp", "icmpv6", "arp", or "0x88cc" for another ethertype. */
  proto: string;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  smac?: string;
}

/** What the reader knows of the node: bindings by port, pods by address, the policies isolating a pod. */
export interface Lookups {
  binding(port: string): Binding | undefined;
  pod?(ip: string): string | undefined;
  policies?(ip: string, dir: 'ingress' | 'egress'): string[];
}

const canon = (ip: string | undefined): string | undefined => {
  const p = ip === undefined ? undefined : parseIP(ip);
  return p ? formatIP(p) : undefined;
};

/** The reason a prefix names ("podwire-guard ip4", "podwire-policy ingress", "podwire-gate to"). */
export function reasonOf(prefix: string): DropReason | undefined {
  const [rule, what] = prefix.split(' ');
  if (rule === GUARD_PREFIX) return (DROP_REASONS as readonly string[]).includes(what ?? '') ? (what as DropReason) : undefined;
  if (rule === 'podwire-policy') return what === 'ingress' || what === 'egress' ? what : undefined;
  if (rule === 'podwire-gate') return 'held';
  return undefined;
}

const PROTOS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };

/** A raw drop with its pod, port and policies found (pure, given the lookups). */
export function explainDrop(raw: RawDrop, look: Lookups): Drop | undefined {
  const reason = reasonOf(raw.prefix);
  if (!reason) return undefined;
  const proto =
    raw.ethertype === 0x0806
      ? 'arp'
      : raw.l4 !== undefined
        ? (PROTOS[raw.l4] ?? String(raw.l4))
        : `0x${(raw.ethertype ?? 0).toString(16).padStart(4, '0')}`;
  const d: Drop = { time: new Date(raw.time).toISOString(), reason, proto };
  const src = canon(raw.src);
  const dst = canon(raw.dst);
  if (src) d.src = src;
  if (dst) d.dst = dst;
  if (raw.sport !== undefined) d.sport = raw.sport;
  if (raw.dport !== undefined) d.dport = raw.dport;
  if (raw.smac) d.smac = raw.smac;
  const podOf = (ip: string | undefined) => (ip ? look.pod?.(ip) : undefined);
  if (raw.prefix.startsWith(GUARD_PREFIX) && reason !== 'vxlan') {
    // The sender is whoever is on the port the mark names, not whatever address it wrote.
    d.port = portOfId(raw.mark);
    const b = look.binding(d.port);
    if (b) {
      d.own = [...b.ips];
      d.mac = b.mac;
      const pod = b.ips.map((ip) => podOf(canon(ip))).find(Boolean);
      if (pod) d.pod = pod;
    }
  } else {
    // Past the spoofing checks an address is its pod's own: the receiver for ingress, the sender otherwise.
    const ip = reason === 'ingress' || (reason === 'held' && raw.prefix.endsWith(' to')) ? dst : src;
    const pod = podOf(ip);
    if (pod) d.pod = pod;
    if ((reason === 'ingress' || reason === 'egress') && ip) {
      const ps = look.policies?.(ip, reason) ?? [];
      if (ps.length) d.policies = ps;
    }
  }
  return d;
}

/** The Prometheus labels of a drop: reason, the pod's namespace, the policies (comma-separated). */
export const dropLabels = (d: Drop): { reason: string; namespace: string; policy: string } => ({
  reason: d.reason,
  namespace: d.pod?.split('/')[0] ?? '',
  policy: (d.policies ?? []).join(','),
});

const hostPort = (ip: string | undefined, port: number | undefined): string =>
  ip === undefined ? '?' : port === undefined ? ip : ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;

/** The packet in a few words: "UDP 10.244.1.3:40000 → 10.244.1.4:5000", "ARP from 02:..", "ethertype 0x88cc from 02:..". */
export function packetText(d: Drop): string {
  if (d.proto === 'arp') return t('drops.packet.arp', { mac: d.smac ?? '?' });
  if (d.proto.startsWith('0x')) return t('drops.packet.other', { type: d.proto, mac: d.smac ?? '?' });
  return `${d.proto.toUpperCase()} ${hostPort(d.src, d.sport)} → ${hostPort(d.dst, d.dport)}`;
}

/** One line for a person, in the current language: when, what, and why it was dropped. */
export function dropText(d: Drop): string {
  const who = d.pod
    ? d.port
      ? t('drops.who.podPort', { pod: d.pod, port: d.port })
      : d.pod
    : d.port
      ? t('drops.who.port', { port: d.port })
      : t('drops.who.unknown');
  const p = {
    who,
    own: (d.own ?? []).join(', ') || '?',
    mac: d.mac ?? '?',
    smac: d.smac ?? '?',
    src: d.src ?? '?',
    policies: (d.policies ?? []).join(', ') || '?',
  };
  const id = `drops.why.${d.reason}` as MessageId;
  const time = d.time.slice(11, 23);
  return t('drops.line', { time, packet: packetText(d), why: t(id, p) });
}
