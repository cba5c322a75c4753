// Which DNAT rule a packet meets: the nat table (iptables-save -t nat) walked from PREROUTING (a packet
// arriving) or OUTPUT (sent by the namespace itself), the way the kernel would for the first packet of a
// connection. It knows the matches kube-proxy and podwire write (-s -d -p -i --dport, addrtype, statistic,
// mark, comment); a Cluster IP or a nodePort/hostPort becomes the Pod IP:port that really answers. Pure.
import { BITS, cidrContains, familyOf, parseCidr, parseIP } from '../net/ip.js';

export interface Packet {
  src: string;
  dst: string;
  proto: string;
  /** undefined: any port; a rule's --dport then fills it in (the Service's port, for a learner's path). */
  dport?: number;
  iif?: string;
  /** The interface it leaves by (POSTROUTING), once routed. */
  oif?: string;
  /** The packet's mark in this namespace (kube-proxy's 0x4000: masquerade it); a namespace's mark starts at 0. */
  mark?: number;
}

export interface Rule {
  chain: string;
  /** [negated, option, value] as written. */
  matches: [boolean, string, string][];
  target: string;
  targetArgs: Record<string, string>;
  comment?: string;
}

export type NatTable = Map<string, Rule[]>;

/** Splits a rule line into words, keeping "quoted comments" whole. */
function words(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

// Options that take no value (modules are noted but need no evaluation of their own).
const FLAGS = new Set(['--random-fully', '--random', '--persistent']);

export function parseNat(saved: string): NatTable {
  const t: NatTable = new Map();
  for (const line of saved.split('\n')) {
    if (line.startsWith(':')) t.set(line.slice(1).split(' ')[0]!, t.get(line.slice(1).split(' ')[0]!) ?? []);
    if (!line.startsWith('-A ')) continue;
    const w = words(line);
    const rule: Rule = { chain: w[1]!, matches: [], target: '', targetArgs: {} };
    let negate = false;
    for (let i = 2; i < w.length; i++) {
      const opt = w[i]!;
      if (opt === '!') {
        negate = true;
        continue;
      }
      if (opt === '-j' || opt === '-g') {
        rule.target = w[++i]!;
        for (i++; i < w.length; i++) {
          if (FLAGS.has(w[i]!)) rule.targetArgs[w[i]!] = '';
          else rule.targetArgs[w[i]!] = w[++i] ?? '';
        }
        break;
      }
      const value = FLAGS.has(opt) ? '' : (w[++i] ?? '');
      if (opt === '--comment') rule.comment = value;
      else rule.matches.push([negate, opt, value]);
      negate = false;
    }
    if (!t.has(rule.chain)) t.set(rule.chain, []);
    t.get(rule.chain)!.push(rule);
  }
  return t;
}

function inCidr(ip: string, cidr: string): boolean {
  const c = parseCidr(cidr.includes('/') ? cidr : `${cidr}/${BITS[familyOf(cidr)]}`);
  const p = parseIP(ip);
  return !!c && !!p && cidrContains(c, p);
}

/** Does the rule match? `pkt` may get its port filled in; `local` says whether an address is this namespace's. */
function matches(r: Rule, pkt: Packet, local: (ip: string) => boolean): boolean {
  for (const [neg, opt, v] of r.matches) {
    let ok: boolean;
    switch (opt) {
      case '-s':
        ok = inCidr(pkt.src, v);
        break;
      case '-d':
        ok = inCidr(pkt.dst, v);
        break;
      case '-p':
        ok = pkt.proto === v;
        break;
      case '-i':
        ok = pkt.iif === v;
        break;
      case '--dport':
        ok = pkt.dport === undefined || pkt.dport === Number(v);
        break;
      case '--dst-type':
        ok = v === 'LOCAL' ? local(pkt.dst) : !local(pkt.dst);
        break;
      case '--src-type':
        ok = v === 'LOCAL' ? local(pkt.src) : !local(pkt.src);
        break;
      case '-o':
        ok = pkt.oif === v;
        break;
      case '--mark': {
        const [value, mask = '0xffffffff'] = v.split('/');
        ok = ((pkt.mark ?? 0) & Number(mask)) === Number(value);
        break;
      }
      case '--ctstate':
        ok = false; // a connection's first packet is NEW
        break;
      default:
        ok = true; // -m MODULE, --mode/--probability (statistic: the first endpoint is taken)
    }
    if (ok === neg) return false;
  }
  return true;
}

export interface NatResult {
  /** The chains walked to the rule that decided, e.g. ["PREROUTING", "KUBE-SERVICES", "KUBE-SVC-…"]. */
  chains: string[];
  dnat?: { ip: string; port?: number };
  comment?: string;
  /** Endpoints the Service chain chose among (statistic rules), when there were several. */
  choices: number;
}

/** A DNAT target: "10.244.1.5:80", "10.244.1.5", "[fd00::5]:80" (ip6tables brackets an address with a port), "fd00::5". */
export function parseEndpoint(s: string): { ip: string; port?: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (m) return { ip: m[1]!, port: m[2] ? Number(m[2]) : undefined };
  if (s.split(':').length > 2) return { ip: s }; // a bare IPv6 address
  const [ip, p] = s.split(':');
  return { ip: ip!, port: p ? Number(p) : undefined };
}

/** A MARK target's effect on the packet's mark (kube-proxy's KUBE-MARK-MASQ and KUBE-POSTROUTING use them). */
function applyMark(args: Record<string, string>, mark: number): number {
  const [v = 0, m = 0xffffffff] = (Object.values(args)[0] ?? '').split('/').map(Number);
  if ('--set-xmark' in args) return ((mark & ~m) ^ v) >>> 0;
  if ('--set-mark' in args) return ((mark & ~m) | v) >>> 0;
  if ('--or-mark' in args) return (mark | v) >>> 0;
  if ('--xor-mark' in args) return (mark ^ v) >>> 0;
  if ('--and-mark' in args) return (mark & v) >>> 0;
  return mark;
}

export interface SnatResult {
  /** The chains walked to the rule, e.g. ["POSTROUTING", "PODWIRE-POSTROUTING"]. */
  chains: string[];
  /** The source it is given: undefined for MASQUERADE (the address of the interface it leaves by). */
  to?: string;
}

/** POSTROUTING for a routed packet (pkt.oif set): the MASQUERADE or SNAT it meets, if any. */
export function walkSnat(t: NatTable, pkt: Packet, local: (ip: string) => boolean): SnatResult | undefined {
  const chains: string[] = [];
  let found: SnatResult | undefined;
  const walk = (chain: string, depth: number): boolean => {
    if (depth > 20) return true;
    chains.push(chain);
    for (const r of t.get(chain) ?? []) {
      if (!matches(r, pkt, local)) continue;
      if (r.target === 'MARK') pkt.mark = applyMark(r.targetArgs, pkt.mark ?? 0);
      else if (r.target === 'MASQUERADE' || r.target === 'SNAT') {
        found = { chains: [...chains], to: r.targetArgs['--to-source']?.split(':')[0] };
        return true;
      } else if (r.target === 'RETURN') break;
      else if (r.target === 'ACCEPT') return true;
      else if (t.has(r.target) && walk(r.target, depth + 1)) return true;
    }
    chains.pop();
    return false;
  };
  walk('POSTROUTING', 0);
  return found;
}

/** Walks the nat table for a packet's first hook; pkt.dport is filled in from the rule that matched a port. */
export function walkNat(t: NatTable, hook: 'PREROUTING' | 'OUTPUT', pkt: Packet, local: (ip: string) => boolean): NatResult {
  const res: NatResult = { chains: [], choices: 0 };
  const walk = (chain: string, depth: number): 'done' | 'return' => {
    if (depth > 20) return 'done';
    res.chains.push(chain);
    const rules = t.get(chain) ?? [];
    const statistic = rules.filter((r) => r.matches.some(([, o]) => o === '--probability')).length;
    if (statistic) res.choices = statistic + 1;
    for (const r of rules) {
      const before = pkt.dport;
      if (!matches(r, pkt, local)) continue;
      const port = r.matches.find(([n, o]) => !n && o === '--dport');
      if (before === undefined && port) pkt.dport = Number(port[2]);
      if (r.target === 'DNAT') {
        res.dnat = parseEndpoint(r.targetArgs['--to-destination'] ?? '');
        res.comment = r.comment;
        return 'done';
      }
      if (r.target === 'MARK') pkt.mark = applyMark(r.targetArgs, pkt.mark ?? 0);
      if (r.target === 'RETURN') break;
      if (r.target === 'ACCEPT') return 'done';
      if (t.has(r.target)) {
        if (walk(r.target, depth + 1) === 'done') return 'done';
        res.chains.pop();
        pkt.dport = before; // that chain did nothing to the packet after all
      }
      // MARK, MASQUERADE, SNAT, LOG: the walk goes on
    }
    return 'return';
  };
  walk(hook, 0);
  if (!res.dnat) res.chains = [];
  return res;
}

/** A Service port as kube-proxy's iptables rules have it: its Cluster IP and port, nodePort, and backends. */
export interface ServiceView {
  /** kube-proxy's name for it: "namespace/name:port". */
  name: string;
  clusterIP: string;
  port: number;
  proto: string;
  nodePort?: number;
  /** Pod IP:targetPort of each endpoint, as its DNAT writes it. */
  backends: { ip: string; port?: number }[];
}

/**
 * The Services a nat table holds (kube-proxy's iptables mode, pure): KUBE-SERVICES' Cluster IP rules,
 * KUBE-NODEPORTS' ports by the same name, and the DNAT at the end of each Service chain's endpoints.
 */
export function servicesOf(t: NatTable): ServiceView[] {
  const opt = (r: Rule, o: string) => r.matches.find(([neg, name]) => !neg && name === o)?.[2];
  const backends = (chain: string, seen: Set<string>): { ip: string; port?: number }[] => {
    if (seen.has(chain)) return [];
    seen.add(chain);
    return (t.get(chain) ?? []).flatMap((r) =>
      r.target === 'DNAT' && r.targetArgs['--to-destination']
        ? [parseEndpoint(r.targetArgs['--to-destination'])]
        : /^KUBE-(SVC|SVL|EXT|SEP)-/.test(r.target)
          ? backends(r.target, seen)
          : [],
    );
  };
  const out: ServiceView[] = [];
  for (const r of t.get('KUBE-SERVICES') ?? []) {
    const d = opt(r, '-d');
    const port = Number(opt(r, '--dport'));
    if (!d || !port || !/^KUBE-SVC-/.test(r.target)) continue;
    out.push({
      name: (r.comment ?? r.target).replace(/ cluster IP$/, ''),
      clusterIP: d.replace(/\/(32|128)$/, ''),
      port,
      proto: opt(r, '-p') ?? 'tcp',
      backends: backends(r.target, new Set()),
    });
  }
  for (const r of t.get('KUBE-NODEPORTS') ?? []) {
    const s = out.find((x) => x.name === r.comment);
    const port = Number(opt(r, '--dport'));
    if (s && port) s.nodePort = port;
  }
  return out;
}
