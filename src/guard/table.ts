// A pod is only itself: each pod's identity bound to its port on the node, and every frame it sends
// checked against it where it enters the node — the bridge's prerouting hook, before the bridge learns its
// source MAC and before the node routes it — so bridged and routed traffic are covered alike, whatever the
// node's firewall backend (a bridge-family table is nftables' own; iptables nodes need only `nft`).
//
//   table bridge podwire-guard
//     set ports  { ifname }                      the host veths of pods whose network checks (ADD adds)
//     set macs   { ifname . ether_addr }         the pod's own MAC on its port
//     set ips4   { ifname . ipv4_addr }          its IPv4 addresses
//     set ips6   { ifname . ipv6_addr }          its IPv6 addresses, its link-local one included
//     set nd6    { ifname . @th,64,128 }         the same as the target of a neighbour advertisement
//     set ok4    { ifname . ether_addr . ipv4_addr }   the fast path: a pod's IPv4 packet from its own MAC and
//     set ok6    { ifname . ether_addr . ipv6_addr }   address passes with one lookup (ICMPv6 goes the long way)
//     map portids { ifname : mark }              the port's id (its name's 8 hex digits): a dropped frame is
//                                                logged with it as its mark, so `podwire drops` names the
//                                                pod that really sent it, whatever it forged
//     chain check   bridge prerouting: first the fast path (ok4, ok6: what nearly every packet is); then a
//                   port not in @ports passes (another plugin's, a network with the
//                   checks off); a source MAC not its own -> drop; then by ethertype: ARP whose sender is
//                   not its address and MAC, IPv4 from an address not its own, IPv6 from an address not
//                   its own (DAD's unspecified source allowed for NS and MLD), any router advertisement or
//                   redirect, a neighbour advertisement for an address not its own -> drop; any other
//                   ethertype -> drop.
//
// Every drop is counted by a named counter (kept when the rules are written again) and logged, at most
// 10 a second, to netlink log group GUARD_LOG_GROUP with a prefix naming the check.
// The rules are written whole, idempotently, by whoever writes an element first (node up, or ADD when
// node up never ran): `add` of what exists changes nothing, `flush chain` + the rules replace the rules,
// the sets keep their elements. Pure lines here, applied with one `nft -f -` (kernel floor); a pod's
// elements, at ADD and DEL, go straight to the kernel as one nf_tables batch (kernel/nft-netlink.ts) where
// the runtime can, with no process, and by `nft` where it cannot.
import { type Family, type IP, formatIP, ipBytes, parseIP } from '../net/ip.js';
import { type Started, start } from '../runtime/run.js';
import { sys } from '../runtime/files.js';
import { timed } from '../runtime/profile.js';
import { HOST_VETH_RE } from '../kernel/names.js';
import { macBytes, validMac } from '../net/mac.js';
import { ENOENT, NFPROTO, type NftElement, NftNetlinkError, applyElements, concat, ifnameBytes, markBytes } from '../kernel/nft-netlink.js';
import { type NftListing, listNftTable } from '../kernel/nft-json.js';

export const GUARD_TABLE = 'bridge podwire-guard';
export const GUARD_TABLE_NAME = 'podwire-guard';
const T = GUARD_TABLE;
/** The netlink log group of every packet podwire drops as not its pod's (`podwire drops`, tcpdump -i nflog:N). */
export const GUARD_LOG_GROUP = 7461;

/** Why a frame was dropped: the counters' and log prefixes' names. */
export const GUARD_CHECKS = ['mac', 'arp', 'ip4', 'ip6', 'ra', 'na', 'ethertype'] as const;
/** The log prefix of a guard drop: "podwire-guard <check>: ". */
export const GUARD_PREFIX = 'podwire-guard';
export type GuardCheck = (typeof GUARD_CHECKS)[number];

/** One pod's identity on its port. */
export interface Binding {
  /** Its host veth (the bridge port its frames enter by). */
  port: string;
  mac: string;
  /** Its addresses, both families; the IPv6 link-local one is added from the MAC. */
  ips: readonly string[];
}

/**
 * A drop everyone can see: logged to the group (at most 10 a second; `first` done before, e.g. the port's
 * mark), then the same drop unlogged for what is over the rate. `tail`: its counter, verdict and comment.
 * Every podwire rule that drops a packet goes through this, so `podwire drops` sees them all.
 */
export const loggedDrop = (prefix: string, tail: string, first = ''): [string, string] => [
  `limit rate 10/second burst 20 packets ${first ? `${first} ` : ''}log group ${GUARD_LOG_GROUP} prefix "${prefix}: " ${tail}`,
  tail,
];

/**
 * Two rules per check: logged (the frame marked with its port's id first, so the log names the port its
 * sender is on — only frames being dropped are marked, kube-proxy's bits on others are left alone), then
 * unlogged.
 */
const dropRules = (chain: string, match: string, check: GuardCheck, why: string): string[] =>
  loggedDrop(`${GUARD_PREFIX} ${check}`, `counter name "drop-${check}" drop comment "${why}"`, 'meta mark set iifname map @portids').map(
    (r) => `add rule ${T} ${chain} ${match ? `${match} ` : ''}${r}`,
  );

/** The table: sets, counters, chains and rules; the sets' elements are kept. */
export function guardScript(): string[] {
  return [
    `add table ${T} { comment "podwire: each pod sends only as itself (its MAC and addresses on its port)"; }`,
    `add set ${T} ports { type ifname; comment "pods' host veths, checked"; }`,
    `add set ${T} macs { type ifname . ether_addr; comment "each port's pod MAC"; }`,
    `add set ${T} ips4 { type ifname . ipv4_addr; comment "each port's pod IPv4 addresses"; }`,
    `add set ${T} ips6 { type ifname . ipv6_addr; comment "each port's pod IPv6 addresses, link-local included"; }`,
    `add set ${T} nd6 { typeof iifname . @th,64,128; comment "the same, as a neighbour advertisement's target"; }`,
    `add map ${T} portids { type ifname : mark; comment "each port's id, the mark of its logged drops"; }`,
    `add set ${T} ok4 { type ifname . ether_addr . ipv4_addr; comment "fast path: each port's MAC and IPv4 addresses"; }`,
    `add set ${T} ok6 { type ifname . ether_addr . ipv6_addr; comment "fast path: each port's MAC and IPv6 addresses"; }`,
    ...GUARD_CHECKS.map((c) => `add counter ${T} drop-${c}`),
    `add chain ${T} check { type filter hook prerouting priority -300; policy accept; }`,
    `add chain ${T} check-arp`,
    `add chain ${T} check-ip4`,
    `add chain ${T} check-ip6`,
    ...['check', 'check-arp', 'check-ip4', 'check-ip6'].map((c) => `flush chain ${T} ${c}`),
    // One lookup for what nearly every packet is (measured with 64-byte UDP on one node: ~7 % of the
    // packet rate with the long way first, ~1.5 % with this), before the checks that say why.
    `add rule ${T} check ether type ip iifname . ether saddr . ip saddr @ok4 accept`,
    `add rule ${T} check ether type ip6 meta l4proto != ipv6-icmp iifname . ether saddr . ip6 saddr @ok6 accept`,
    `add rule ${T} check iifname != @ports accept`,
    ...dropRules('check', 'iifname . ether saddr != @macs', 'mac', 'a source MAC not its own'),
    `add rule ${T} check ether type vmap { arp : jump check-arp, ip : jump check-ip4, ip6 : jump check-ip6 }`,
    ...dropRules('check', '', 'ethertype', 'an ethertype a pod has no business sending'),
    ...dropRules('check-arp', 'iifname . arp saddr ether != @macs', 'arp', 'ARP whose sender MAC is not its own'),
    `add rule ${T} check-arp iifname . arp saddr ip @ips4 accept`,
    ...dropRules('check-arp', '', 'arp', 'ARP whose sender is not its own address'),
    `add rule ${T} check-ip4 iifname . ip saddr @ips4 accept`,
    ...dropRules('check-ip4', '', 'ip4', 'an IPv4 source not its own'),
    ...dropRules('check-ip6', 'icmpv6 type { nd-router-advert, nd-redirect }', 'ra', 'a router advertisement or redirect from a pod'),
    ...dropRules(
      'check-ip6',
      'icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @nd6',
      'na',
      'a neighbour advertisement for an address not its own',
    ),
    `add rule ${T} check-ip6 ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } accept`,
    `add rule ${T} check-ip6 iifname . ip6 saddr @ips6 accept`,
    ...dropRules('check-ip6', '', 'ip6', 'an IPv6 source not its own'),
  ];
}

/** The link-local address the kernel gives an interface with this MAC (EUI-64, addr_gen_mode 0). */
export function linkLocalOf(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  const g = (hi: number, lo: number) => ((hi << 8) | lo).toString(16);
  return `fe80::${g(b[0]! ^ 2, b[1]!)}:${g(b[2]!, 0xff)}:${g(0xfe, b[3]!)}:${g(b[4]!, b[5]!)}`;
}

/** A port's id: the 8 hex digits of its name (veth1a2b3c4d), the mark its dropped frames are logged with. */
export const portId = (port: string): number => parseInt(port.slice(4), 16);
/** The port an id names. */
export const portOfId = (id: number): string => `veth${(id >>> 0).toString(16).padStart(8, '0')}`;

/**
 * One element of a binding: its set, its bytes (kernel/nft-netlink.ts), and as `nft` writes it (a map's
 * with its value after " : "), made only when asked: the netlink way never needs the words.
 */
interface GuardElement extends NftElement {
  text: () => string;
}

/** Every element of a binding, set by set. */
function elements(b: Binding): GuardElement[] {
  // Only podwire's own ports are bound, and the name goes into a script: checked here, whoever built it.
  if (!HOST_VETH_RE.test(b.port)) throw new Error(`guard: port ${JSON.stringify(b.port)} is not a podwire host veth`);
  if (!validMac(b.mac)) throw new Error(`guard: ${JSON.stringify(b.mac)} is not a MAC address`);
  const parsed = b.ips.map((ip) => parseIP(ip));
  const bad = parsed.findIndex((ip) => !ip);
  if (bad >= 0) throw new Error(`guard: ${JSON.stringify(b.ips[bad])} is not an IP address`);
  const q = `"${b.port}"`;
  const port = ifnameBytes(b.port);
  const mac = macBytes(b.mac);
  const ips = [...(parsed as IP[]), parseIP(linkLocalOf(b.mac))!];
  const fam = (f: Family) => ips.filter((ip) => ip.family === f).map((ip) => ({ ip, bytes: ipBytes(ip) }));
  const el = (set: string, text: () => string, ...key: Uint8Array[]): GuardElement => ({ set, text, key: concat(...key) });
  const id = portId(b.port);
  return [
    el('ports', () => q, port),
    { ...el('portids', () => `${q} : 0x${id.toString(16)}`, port), data: markBytes(id) },
    el('macs', () => `${q} . ${b.mac}`, port, mac),
    ...fam(4).map(({ ip, bytes }) => el('ips4', () => `${q} . ${formatIP(ip)}`, port, bytes)),
    ...fam(6).map(({ ip, bytes }) => el('ips6', () => `${q} . ${formatIP(ip)}`, port, bytes)),
    ...fam(6).map(({ ip, bytes }) => el('nd6', () => `${q} . 0x${ip.value.toString(16).padStart(32, '0')}`, port, bytes)),
    ...fam(4).map(({ ip, bytes }) => el('ok4', () => `${q} . ${b.mac} . ${formatIP(ip)}`, port, mac, bytes)),
    ...fam(6).map(({ ip, bytes }) => el('ok6', () => `${q} . ${b.mac} . ${formatIP(ip)}`, port, mac, bytes)),
  ];
}

/** A binding's elements, the port last (a port is checked only once all of it is there), or first (unbinding). */
const ordered = (bs: readonly Binding[], portFirst: boolean): GuardElement[] => {
  const els = bs.flatMap(elements);
  const ports = els.filter((e) => e.set === 'ports');
  const rest = els.filter((e) => e.set !== 'ports');
  return portFirst ? [...ports, ...rest] : [...rest, ...ports];
};

/** Binds these pods to their ports: their elements, the port last. */
export const bindLines = (bs: readonly Binding[]): string[] => ordered(bs, false).map((e) => `add element ${T} ${e.set} { ${e.text()} }`);

/**
 * Unbinds them, whether or not they are bound: each element added, then deleted, in one transaction (a
 * delete of a missing element would fail it), the port first, so no port is left checked without its pod.
 */
export const unbindLines = (bs: readonly Binding[]): string[] => {
  const els = ordered(bs, true);
  return [
    ...els.map((e) => `add element ${T} ${e.set} { ${e.text()} }`),
    ...els.map((e) => `delete element ${T} ${e.set} { ${e.text().replace(/ : .*$/, '')} }`),
  ];
};

/**
 * The same two, straight to the kernel (kernel/nft-netlink.ts): true when done, false when the table or a
 * set is missing (nothing done), undefined when this runtime cannot (then `nft`). Other refusals throw.
 */
function netlinkApply(bs: readonly Binding[], unbind: boolean): boolean | undefined {
  const els = ordered(bs, unbind);
  try {
    const ops = unbind
      ? [
          { op: 'add' as const, elements: els },
          { op: 'delete' as const, elements: els },
        ]
      : [{ op: 'add' as const, elements: els }];
    return timed(unbind ? 'guard: unbind (netlink)' : 'guard: bind (netlink)', () => applyElements(NFPROTO.bridge, GUARD_TABLE_NAME, ops));
  } catch (e) {
    if (e instanceof NftNetlinkError && e.errno === ENOENT) return false;
    throw e;
  }
}

/** What the sets hold, per port (pure): the table as `nft -j list` gives it. */
export function bindingsOf(listing: NftListing | undefined): Binding[] {
  const by = new Map<string, { mac?: string; ips: string[]; port: boolean }>();
  const of = (port: string) => {
    let b = by.get(port);
    if (!b) by.set(port, (b = { ips: [], port: false }));
    return b;
  };
  for (const o of (listing?.nftables ?? []) as Record<string, { name?: string; elem?: unknown[] } | undefined>[]) {
    const set = o.set;
    if (!set?.elem) continue;
    for (const e of set.elem) {
      // A concatenation's element is {"concat": [...]}; a single key's, the value itself.
      const key = e && typeof e === 'object' && 'elem' in e ? (e as { elem: { val: unknown } }).elem.val : e;
      const parts = (key && typeof key === 'object' && 'concat' in key ? (key as { concat: unknown[] }).concat : [key]).map((x) =>
        String(x),
      );
      const port = parts[0]!;
      if (set.name === 'ports') of(port).port = true;
      else if (set.name === 'macs') of(port).mac = parts[1];
      else if (set.name === 'ips4' || set.name === 'ips6') {
        if (!parts[1]!.startsWith('fe80:')) of(port).ips.push(parts[1]!);
      }
    }
  }
  return [...by].filter(([, b]) => b.mac).map(([port, b]) => ({ port, mac: b.mac!, ips: b.ips }));
}

/** What the sets hold now, per port, in this namespace or `ns` (DEL without a prevResult, GC, status, doctor, path). */
export async function listBindings(ns?: string): Promise<Binding[]> {
  return bindingsOf(await listNftTable('bridge', GUARD_TABLE_NAME, ns));
}

/**
 * Applies guard lines with one `nft -f -` (`started`: one already running, waiting for its input), the
 * table written first when `withTable`; false when the table (or one of its sets) is not there — nothing
 * is bound then (as gateApply says of the gate). Any other failure is thrown.
 */
export async function guardApply(lines: readonly string[], withTable: boolean, started?: Started): Promise<boolean> {
  if (!lines.length && !withTable) {
    void started?.finish().catch(() => undefined);
    return true;
  }
  const input = [...(withTable ? guardScript() : []), ...lines].join('\n') + '\n';
  const r = await (started ?? start('nft', ['-f', '-'], { label: 'nft -f - (guard)' })).finish(input);
  if (r.code === 0) return true;
  if (/No such file or directory/.test(r.stderr)) return false;
  throw new Error(`nft (${T}): ${r.stderr.split('\n').find((l) => l.includes('Error')) ?? r.stderr.trim()}`);
}

/**
 * How one binding will be written, decided as ADD starts: straight to the kernel where this runtime can
 * (no process at all), else an `nft` started now and fed later, its start-up run while ADD takes the address.
 */
export type BindWay = Started | 'netlink';
export function chooseBindWay(): BindWay {
  return sys().libc ? 'netlink' : start('nft', ['-f', '-'], { label: 'nft -f - (guard)' });
}

/**
 * Binds a pod: elements only (netlink: well under 1 ms; an `nft`: 2-3 ms), the table written whole
 * (15-17 ms, its rules replaced) by `nft` only when missing.
 */
export async function bind(b: Binding, way?: BindWay): Promise<{ netlink: boolean }> {
  const done = way === 'netlink' ? netlinkApply([b], false) : undefined;
  if (done) return { netlink: true };
  const lines = bindLines([b]);
  const started = way === 'netlink' ? undefined : way;
  // false: the table is missing, nothing was done: `nft` writes it whole, with the elements.
  if (done === false || !(await guardApply(lines, false, started))) await guardApply(lines, true);
  return { netlink: false };
}

/**
 * Unbinds ports: what `known` says was bound (DEL's prevResult: nothing read first), else what the table
 * holds for them (one listing; GC, reclaim, a DEL without a prevResult). True if anything was there.
 */
export async function unbindPorts(ports: readonly string[], known?: readonly Binding[]): Promise<boolean> {
  if (!ports.length) return false;
  const wanted = new Set(ports);
  const bindings = known ?? (await listBindings()).filter((b) => wanted.has(b.port));
  if (!bindings.length) return false;
  return netlinkApply(bindings, true) ?? (await guardApply(unbindLines(bindings), false));
}
