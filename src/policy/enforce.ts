// Keeps the node's policy table as the API server's objects say (the agent calls sync on every change,
// `podwire netpol sync` once from a file): each object judged on its own, compiled (compile.ts), and
// written as set elements when only pods changed, as the whole table in one transaction otherwise —
// including on the first sync after a restart, so enforcement never has a gap: the old table stays in the
// kernel until the new one replaces it. No policy: no table.
import { setGate, writePolicyReport as writeReport } from '../nodestate/reports.js';
import { nftApply, nftTableExists, nftDeleteTable } from '../firewall/nftables.js';
import { GATE_TABLE, gateScript, releaseLines } from './gate.js';
import { type Compiled, POLICY_TABLE, compile, elementUpdate, fullScript } from './compile.js';
import {
  type NamespaceInfo,
  type PodInfo,
  type Policy,
  isolatingStandIn,
  matches,
  parseNamespace,
  parsePod,
  parsePolicy,
} from './model.js';
import { formatIP, parseIP } from '../net/ip.js';

const canonIP = (ip: string): string => {
  const p = parseIP(ip);
  return p ? formatIP(p) : ip;
};

export interface PolicyObjects {
  policies: unknown[];
  pods: unknown[];
  namespaces: unknown[];
}

export interface SyncResult {
  /** full: the table written whole; elements: set elements only; removed: no policy, the table deleted; none: nothing to do. */
  applied: 'full' | 'elements' | 'removed' | 'none';
  lines: number;
  ms: number;
  compiled?: Compiled;
  /** Objects left out, with the field that is wrong; a NetworkPolicy left out still isolates its pods (`isolating`). */
  leftOut: { kind: string; name: string; why: string; isolating?: boolean }[];
}

const objName = (o: unknown): string => {
  const m = (o as { metadata?: { namespace?: unknown; name?: unknown } })?.metadata;
  return (
    [m?.namespace, m?.name]
      .filter((x) => typeof x === 'string')
      .map((x) => JSON.stringify(x))
      .join('/') || '(no name)'
  );
};

/**
 * What each object read to, by the object itself: an informer replaces an object when it changes, so an
 * object seen before reads the same, and a sync of 20 000 pods parses only those that changed.
 */
const judged = new WeakMap<object, { ok: unknown } | { why: string }>();

function judge<T>(kind: string, list: readonly unknown[], parse: (o: unknown) => T, leftOut: SyncResult['leftOut']): T[] {
  const out: T[] = [];
  for (const o of list) {
    const key = o && typeof o === 'object' ? o : undefined;
    let r = key && (judged.get(key) as { ok: T } | { why: string } | undefined);
    if (!r) {
      try {
        r = { ok: parse(o) };
      } catch (e) {
        r = { why: (e as Error).message };
      }
      if (key) judged.set(key, r);
    }
    if ('ok' in r) out.push(r.ok);
    else leftOut.push({ kind, name: objName(o), why: r.why });
  }
  return out;
}

/** Parses every object; the bad ones are left out, each with its reason. */
export function judgeObjects(o: PolicyObjects): {
  policies: Policy[];
  pods: PodInfo[];
  namespaces: NamespaceInfo[];
  leftOut: SyncResult['leftOut'];
} {
  const leftOut: SyncResult['leftOut'] = [];
  // A policy podwire cannot read fails closed: it is left out (and said, naming the field), and a stand-in
  // that isolates the pods it was meant for, allowing nothing, takes its place (model.ts isolatingStandIn).
  const policies = judge('NetworkPolicy', o.policies, parsePolicy, leftOut);
  const read = new Set(policies.map((p) => `${p.namespace}/${p.name}`));
  for (const raw of o.policies) {
    const standIn = isolatingStandIn(raw);
    if (!standIn || read.has(`${standIn.namespace}/${standIn.name}`)) continue;
    policies.push(standIn);
    const l = leftOut.find((x) => x.kind === 'NetworkPolicy' && x.name === objName(raw));
    if (l) l.isolating = true;
  }
  return {
    policies,
    pods: judge('Pod', o.pods, parsePod, leftOut),
    namespaces: judge('Namespace', o.namespaces, parseNamespace, leftOut),
    leftOut,
  };
}

export class PolicyEnforcer {
  private prev?: Compiled;
  private removedOnce = false;
  /** Local pods (namespace/name@ip) whose address the gate has released: each is released once. */
  private released = new Set<string>();

  /** What the last sync read: the pods and policies a dropped packet is explained with (podwire drops). */
  private last: { pods: PodInfo[]; policies: Policy[] } = { pods: [], policies: [] };
  private byIP?: Map<string, PodInfo>;

  constructor(readonly self: string) {}

  /** The pod (not hostNetwork) that has this address, as of the last sync. */
  podAt(ip: string): PodInfo | undefined {
    if (!this.byIP) {
      this.byIP = new Map();
      for (const p of this.last.pods) if (!p.hostNetwork) for (const a of p.ips) this.byIP.set(canonIP(a), p);
    }
    return this.byIP.get(canonIP(ip));
  }

  /** The policies ("namespace/name") that isolate the pod at this address in a direction. */
  isolating(ip: string, dir: 'ingress' | 'egress'): string[] {
    const pod = this.podAt(ip);
    if (!pod) return [];
    const type = dir === 'ingress' ? 'Ingress' : 'Egress';
    return this.last.policies
      .filter((p) => p.namespace === pod.namespace && p.types.includes(type) && matches(p.podSelector, pod.labels))
      .map((p) => `${p.namespace}/${p.name}`);
  }

  async sync(o: PolicyObjects): Promise<SyncResult> {
    const t0 = performance.now();
    const j = judgeObjects(o);
    this.last = { pods: j.pods, policies: j.policies };
    this.byIP = undefined;
    const done = (applied: SyncResult['applied'], lines: number, compiled?: Compiled): SyncResult => ({
      applied,
      lines,
      ms: performance.now() - t0,
      ...(compiled ? { compiled } : {}),
      leftOut: j.leftOut,
    });
    if (!j.policies.length) {
      // With no policy, nothing is judged: no table (removed once, and whenever one was written), and no
      // gate: nothing holds a new pod.
      if (this.prev || !this.removedOnce) {
        const had = this.prev !== undefined || (await nftTableExists(POLICY_TABLE));
        if (had) await nftDeleteTable(POLICY_TABLE);
        await nftDeleteTable(GATE_TABLE);
        this.prev = undefined;
        this.removedOnce = true;
        this.released.clear();
        return done(had ? 'removed' : 'none', 0);
      }
      return done('none', 0);
    }
    const c = compile(j.policies, j.pods, j.namespaces, this.self);
    const update = this.prev && elementUpdate(this.prev, c);
    // The gate (gate.ts): made with the table, and each local pod the agent now knows released, in the
    // same transaction that puts its address in the sets — it is placed and let go at once.
    const local = j.pods
      .filter((p) => p.node === this.self && !p.hostNetwork)
      .flatMap((p) => p.ips.map((ip) => `${p.namespace}/${p.name}@${ip}`));
    const fresh = update ? local.filter((k) => !this.released.has(k)) : local;
    const gate = [...(update ? [] : gateScript()), ...releaseLines(fresh.map((k) => k.slice(k.lastIndexOf('@') + 1)))];
    const lines = [...(update ?? fullScript(c)), ...gate];
    if (!lines.length) return done('none', 0, c);
    try {
      await nftApply(lines);
    } catch (e) {
      this.prev = undefined; // the next sync writes the table whole
      throw e;
    }
    this.released = new Set(local);
    this.prev = c;
    this.removedOnce = false;
    return done(update ? 'elements' : 'full', lines.length, c);
  }

  /** --network-policy=false: the table goes, and every packet is as without policies. */
  async off(): Promise<boolean> {
    this.prev = undefined;
    await nftDeleteTable(GATE_TABLE);
    if (!(await nftTableExists(POLICY_TABLE))) return false;
    await nftDeleteTable(POLICY_TABLE);
    return true;
  }
}

/** What a sync enforced, as status and doctor read it (nodestate/reports.ts). */
export function writePolicyReport(subnetFile: string, r: SyncResult): void {
  // Written after the sync made the gate (or removed it): the plugin holds new pods only while it is there.
  setGate(subnetFile, r.compiled !== undefined);
  writeReport(subnetFile, {
    applied: r.applied,
    rules: r.compiled?.rules ?? 0,
    policies: r.compiled?.policies ?? [],
    leftOut: r.leftOut,
  });
}
