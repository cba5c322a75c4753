// NetworkPolicy as the compiler needs it: Pods, Namespaces and networking.k8s.io/v1 NetworkPolicies from
// the API server, each judged on its own (an object with a bad field is left out with the reason, and the
// others are enforced), turned into plain values. The semantics are upstream's:
//   - policyTypes absent: Ingress, plus Egress when the policy has an egress section;
//   - a rule's `from`/`to` empty or absent: every peer; `ports` empty or absent: every port;
//   - a peer with podSelector and namespaceSelector: both (AND); several peers: any (OR);
//   - a podSelector alone: pods of the policy's namespace; a namespaceSelector alone: all their pods;
//   - an empty selector ({}) matches everything, every matchExpressions operator as labels.Selector does;
//   - named ports resolve on the destination pod's container ports; endPort makes a range.
import { cidrContains, formatIP, parseCidr, parseIP } from '../net/ip.js';

export type Proto = 'tcp' | 'udp' | 'sctp';
export type Labels = Record<string, string>;

export interface Requirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values: string[];
}
export interface Selector {
  matchLabels: Labels;
  matchExpressions: Requirement[];
}
export interface Peer {
  podSelector?: Selector;
  namespaceSelector?: Selector;
  ipBlock?: { cidr: string; except: string[] };
}
export interface PortSpec {
  protocol: Proto;
  /** A number, a named port, or undefined (every port of the protocol). */
  port?: number | string;
  endPort?: number;
}
export interface Rule {
  /** undefined: every peer. */
  peers?: Peer[];
  /** undefined: every port. */
  ports?: PortSpec[];
}
export interface Policy {
  namespace: string;
  name: string;
  podSelector: Selector;
  types: ('Ingress' | 'Egress')[];
  ingress: Rule[];
  egress: Rule[];
}
export interface PodInfo {
  namespace: string;
  name: string;
  labels: Labels;
  ips: string[];
  node?: string;
  hostNetwork: boolean;
  /** Container ports with a name (for named ports). */
  ports: { name: string; port: number; protocol: Proto }[];
}
export interface NamespaceInfo {
  name: string;
  labels: Labels;
}

export class PolicyInputError extends Error {}
const bad = (where: string, why: string): PolicyInputError => new PolicyInputError(`${where} ${why}`);

const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** IANA_SVC_NAME: what a named port may be. */
const PORT_NAME = /^(?=.{1,15}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function name(v: unknown, where: string, max = 253): string {
  if (typeof v !== 'string' || v.length > max || !DNS1123.test(v.replace(/\./g, '-')))
    throw bad(where, `${JSON.stringify(v)} is not a valid name`);
  return v;
}

function labels(v: unknown, where: string): Labels {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(where, 'must be an object of labels');
  const out: Labels = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (!LABEL_KEY.test(k) || k.length > 317) throw bad(where, `has an invalid label key ${JSON.stringify(k)}`);
    if (typeof x !== 'string' || x.length > 63 || !LABEL_VALUE.test(x))
      throw bad(`${where}.${k}`, `${JSON.stringify(x)} is not a valid label value`);
    out[k] = x;
  }
  return out;
}

export function parseSelector(v: unknown, where: string): Selector {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad(where, 'must be a label selector');
  const o = v as Record<string, unknown>;
  const exprs = o.matchExpressions ?? [];
  if (!Array.isArray(exprs)) throw bad(`${where}.matchExpressions`, 'must be a list');
  return {
    matchLabels: labels(o.matchLabels, `${where}.matchLabels`),
    matchExpressions: exprs.map((e: unknown, i): Requirement => {
      const at = `${where}.matchExpressions[${i}]`;
      const r = e as Record<string, unknown>;
      if (typeof r?.key !== 'string' || !LABEL_KEY.test(r.key)) throw bad(`${at}.key`, 'must be a label key');
      const op = r.operator;
      if (op !== 'In' && op !== 'NotIn' && op !== 'Exists' && op !== 'DoesNotExist')
        throw bad(`${at}.operator`, `${JSON.stringify(op)} is not In, NotIn, Exists or DoesNotExist`);
      const values = r.values ?? [];
      if (!Array.isArray(values) || values.some((x) => typeof x !== 'string')) throw bad(`${at}.values`, 'must be a list of strings');
      if ((op === 'In' || op === 'NotIn') && !values.length) throw bad(`${at}.values`, `must not be empty for ${op}`);
      if ((op === 'Exists' || op === 'DoesNotExist') && values.length) throw bad(`${at}.values`, `must be empty for ${op}`);
      return { key: r.key, operator: op, values: values as string[] };
    }),
  };
}

/** labels.Selector's Matches. */
export function matches(s: Selector, l: Labels): boolean {
  for (const [k, v] of Object.entries(s.matchLabels)) if (l[k] !== v) return false;
  for (const r of s.matchExpressions) {
    const has = Object.hasOwn(l, r.key);
    if (r.operator === 'In' && !(has && r.values.includes(l[r.key]!))) return false;
    if (r.operator === 'NotIn' && has && r.values.includes(l[r.key]!)) return false;
    if (r.operator === 'Exists' && !has) return false;
    if (r.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

const proto = (v: unknown, where: string): Proto => {
  const p = v === undefined ? 'TCP' : v;
  if (p !== 'TCP' && p !== 'UDP' && p !== 'SCTP') throw bad(where, `${JSON.stringify(v)} is not TCP, UDP or SCTP`);
  return p.toLowerCase() as Proto;
};
const portNumber = (v: unknown, where: string): number => {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535)
    throw bad(where, `${JSON.stringify(v)} is not a port from 1 to 65535`);
  return v as number;
};

function parseCidrText(v: unknown, where: string): string {
  const c = typeof v === 'string' ? parseCidr(v) : undefined;
  if (!c) throw bad(where, `${JSON.stringify(v)} is not a CIDR`);
  return `${formatIP({ family: c.family, value: c.first })}/${c.prefix}`;
}

function parseRules(v: unknown, where: string, peerKey: 'from' | 'to'): Rule[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad(where, 'must be a list');
  return v.map((r: unknown, i): Rule => {
    const at = `${where}[${i}]`;
    const o = (r ?? {}) as Record<string, unknown>;
    const rule: Rule = {};
    // client-node's typed objects (what an informer's list gives) call `from` `_from`.
    const peers = o[peerKey] ?? (peerKey === 'from' ? o._from : undefined);
    if (Array.isArray(peers) && peers.length) {
      rule.peers = peers.map((p: unknown, j): Peer => {
        const pat = `${at}.${peerKey}[${j}]`;
        const q = (p ?? {}) as Record<string, unknown>;
        const peer: Peer = {};
        if (q.podSelector !== undefined && q.podSelector !== null) peer.podSelector = parseSelector(q.podSelector, `${pat}.podSelector`);
        if (q.namespaceSelector !== undefined && q.namespaceSelector !== null)
          peer.namespaceSelector = parseSelector(q.namespaceSelector, `${pat}.namespaceSelector`);
        if (q.ipBlock !== undefined && q.ipBlock !== null) {
          if (peer.podSelector || peer.namespaceSelector) throw bad(pat, 'ipBlock cannot be combined with a selector');
          const b = q.ipBlock as Record<string, unknown>;
          const cidr = parseCidrText(b.cidr, `${pat}.ipBlock.cidr`);
          const except = ((b.except ?? []) as unknown[]).map((e, k) => parseCidrText(e, `${pat}.ipBlock.except[${k}]`));
          const outer = parseCidr(cidr)!;
          for (const [k, e] of except.entries()) {
            const c = parseCidr(e)!;
            if (c.family !== outer.family || !cidrContains(outer, { family: c.family, value: c.first }) || c.prefix < outer.prefix)
              throw bad(`${pat}.ipBlock.except[${k}]`, `${e} is not inside ${cidr}`);
          }
          peer.ipBlock = { cidr, except };
        }
        if (!peer.podSelector && !peer.namespaceSelector && !peer.ipBlock)
          throw bad(pat, 'must have podSelector, namespaceSelector or ipBlock');
        return peer;
      });
    }
    const ports = o.ports;
    if (Array.isArray(ports) && ports.length) {
      rule.ports = ports.map((p: unknown, j): PortSpec => {
        const pat = `${at}.ports[${j}]`;
        const q = (p ?? {}) as Record<string, unknown>;
        const spec: PortSpec = { protocol: proto(q.protocol, `${pat}.protocol`) };
        if (typeof q.port === 'string') {
          if (!PORT_NAME.test(q.port)) throw bad(`${pat}.port`, `${JSON.stringify(q.port)} is not a port name`);
          if (q.endPort !== undefined) throw bad(`${pat}.endPort`, 'needs a numeric port');
          spec.port = q.port;
        } else if (q.port !== undefined && q.port !== null) spec.port = portNumber(q.port, `${pat}.port`);
        if (q.endPort !== undefined && q.endPort !== null) {
          if (typeof spec.port !== 'number') throw bad(`${pat}.endPort`, 'needs a numeric port');
          const end = portNumber(q.endPort, `${pat}.endPort`);
          if (end < spec.port) throw bad(`${pat}.endPort`, `${end} is below port ${spec.port}`);
          spec.endPort = end;
        }
        return spec;
      });
    }
    return rule;
  });
}

/** A networking.k8s.io/v1 NetworkPolicy object, or a PolicyInputError naming its bad field. */
export function parsePolicy(o: unknown): Policy {
  const obj = (o ?? {}) as { metadata?: Record<string, unknown>; spec?: Record<string, unknown> };
  const ns = name(obj.metadata?.namespace, 'metadata.namespace', 63);
  const n = name(obj.metadata?.name, 'metadata.name');
  const spec = obj.spec ?? {};
  const podSelector = parseSelector(spec.podSelector ?? {}, 'spec.podSelector');
  let types = spec.policyTypes as unknown;
  if (types === undefined || types === null || (Array.isArray(types) && !types.length)) {
    types = ['Ingress', ...(spec.egress !== undefined && spec.egress !== null ? ['Egress'] : [])];
  }
  if (!Array.isArray(types) || types.some((t) => t !== 'Ingress' && t !== 'Egress'))
    throw bad('spec.policyTypes', 'must list Ingress and/or Egress');
  return {
    namespace: ns,
    name: n,
    podSelector,
    types: [...new Set(types as ('Ingress' | 'Egress')[])],
    ingress: parseRules(spec.ingress, 'spec.ingress', 'from'),
    egress: parseRules(spec.egress, 'spec.egress', 'to'),
  };
}

/**
 * What stays of a NetworkPolicy that cannot be read (a field the API server took and podwire cannot use):
 * fail closed. The pods it was meant to select — its podSelector when that much can be read, else every
 * pod of its namespace — are isolated both ways with nothing allowed, until the policy is fixed. Undefined
 * when not even its namespace and name can be read: then it selects nothing anyone can name.
 */
export function isolatingStandIn(o: unknown): Policy | undefined {
  const obj = (o ?? {}) as { metadata?: Record<string, unknown>; spec?: Record<string, unknown> };
  let namespace: string;
  let n: string;
  try {
    namespace = name(obj.metadata?.namespace, 'metadata.namespace', 63);
    n = name(obj.metadata?.name, 'metadata.name');
  } catch {
    return undefined;
  }
  let podSelector: Selector;
  try {
    podSelector = parseSelector(obj.spec?.podSelector ?? {}, 'spec.podSelector');
  } catch {
    podSelector = parseSelector({}, 'spec.podSelector'); // every pod of the namespace
  }
  return { namespace, name: n, podSelector, types: ['Ingress', 'Egress'], ingress: [], egress: [] };
}

/** A Pod: its labels, addresses (status.podIPs), node, hostNetwork and named container ports. */
export function parsePod(o: unknown): PodInfo {
  const obj = (o ?? {}) as { metadata?: Record<string, unknown>; spec?: Record<string, unknown>; status?: Record<string, unknown> };
  const ns = name(obj.metadata?.namespace, 'metadata.namespace', 63);
  const n = name(obj.metadata?.name, 'metadata.name');
  const raw = (obj.status?.podIPs as { ip?: unknown }[] | undefined)?.map((x) => x?.ip) ?? (obj.status?.podIP ? [obj.status.podIP] : []);
  const ips = raw.map((ip, i) => {
    const p = typeof ip === 'string' ? parseIP(ip) : undefined;
    if (!p) throw bad(`status.podIPs[${i}]`, `${JSON.stringify(ip)} is not an IP address`);
    return formatIP(p);
  });
  const ports: PodInfo['ports'] = [];
  const containers = (obj.spec?.containers ?? []) as { ports?: { name?: unknown; containerPort?: unknown; protocol?: unknown }[] }[];
  for (const [i, c] of (Array.isArray(containers) ? containers : []).entries()) {
    for (const [j, p] of (c?.ports ?? []).entries()) {
      if (p?.name === undefined) continue;
      const at = `spec.containers[${i}].ports[${j}]`;
      if (typeof p.name !== 'string' || !PORT_NAME.test(p.name)) throw bad(`${at}.name`, `${JSON.stringify(p.name)} is not a port name`);
      ports.push({ name: p.name, port: portNumber(p.containerPort, `${at}.containerPort`), protocol: proto(p.protocol, `${at}.protocol`) });
    }
  }
  const node = obj.spec?.nodeName;
  return {
    namespace: ns,
    name: n,
    labels: labels(obj.metadata?.labels, 'metadata.labels'),
    ips,
    ...(typeof node === 'string' && node ? { node } : {}),
    hostNetwork: obj.spec?.hostNetwork === true,
    ports,
  };
}

/** A Namespace, with the label the API server sets on every one (kubernetes.io/metadata.name). */
export function parseNamespace(o: unknown): NamespaceInfo {
  const obj = (o ?? {}) as { metadata?: Record<string, unknown> };
  const n = name(obj.metadata?.name, 'metadata.name', 63);
  return { name: n, labels: { ...labels(obj.metadata?.labels, 'metadata.labels'), 'kubernetes.io/metadata.name': n } };
}
