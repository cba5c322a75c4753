// `podwire lab`: a multi-node pod network in network namespaces, built with the real binary (node up,
// peers sync, and CNI ADD/DEL through the conflist from cni-conf/, as a runtime would), then proven (see
// proofs.ts) and removed. Nothing is created in the host's root namespace and nothing is sent outside
// the lab's namespaces. --keep leaves it up; `podwire lab-down` (npm run lab:down) removes it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { table } from '../i18n/table.js';
import { diagram } from '../explore/diagram.js';
import { atomicWrite } from '../runtime/files.js';
import { DiskStore } from '../ipam/disk-store.js';
import { BACKENDS, type Backend, DEFAULT_VNI, DEFAULT_VXLAN_PORT, type Family, familyName, vxlanDevice } from '../node/cluster.js';
import { ROUTE_PROTO } from '../node/peers.js';
import { podwireBinary, run } from '../runtime/run.js';
import { Lab, type LabFamily, PLANS, type ProxyMode, proxyMode } from './lab.js';
import { proofName, t } from '../i18n/index.js';
import { addPolicyPods, applyPolicies, matrixTable, probeMatrix, stopPolicyLab } from '../policy/lab.js';
import type { FirewallSetting } from '../firewall/choose.js';
import { labDown, labNamespaces, labScope } from './netns.js';
import { type Check, installCounters, labPodMtu, passed, prove } from './proofs.js';
import { HOST_PORT, PORT_COLUMNS, TARGET_PORT, addServices, portRows, proveEphemeral, proveServices } from './services.js';

const say = (m: string) => process.stderr.write(`lab: ${m}\n`);

/** A column: its key in --json output, its header in the table. */
type Col = readonly [key: string, header: string];

/** What the lab shows: tables for people on stdout, or (--json) the same rows, keyed, in one document at the end. */
class Report {
  readonly data: Record<string, unknown> = {};
  constructor(readonly json: boolean) {}

  table(section: string, cols: readonly Col[], rows: (string | number)[][]): void {
    if (this.json) this.data[section] = rows.map((r) => Object.fromEntries(cols.map(([k], i) => [k, r[i]])));
    else
      this.text(
        table(
          cols.map(([, h]) => h),
          rows,
        ),
      );
  }

  /** Text for people; with a section, kept in the JSON as that value. */
  text(m: string, section?: string, value: unknown = m): void {
    if (!this.json) process.stdout.write(`${m}\n\n`);
    else if (section) this.data[section] = value;
  }
}

export interface LabOptions {
  nodes: number;
  podsPerNode: number;
  mode: Backend;
  keep: boolean;
  /** Show podwire's trace of one pod's ADD and DEL. */
  trace: boolean;
  /** Write an SVG of the lab, drawn from live state once every pod is up, to this file. */
  diagram?: string;
  /** One JSON document on stdout instead of tables. */
  json?: boolean;
  /** The address families: ipv4 (default), ipv6 or dual. */
  family?: LabFamily;
  /** kube-proxy's mode for the Services' rules (default iptables). */
  proxy?: ProxyMode;
  /** podwire's firewall backend on the nodes (default auto). */
  firewall?: FirewallSetting;
  /** A file of NetworkPolicies (JSON: a list, or a kubectl List) to enforce on x, y, z × a, b, c and show the reachability of. */
  policy?: string;
  /** The podwire the nodes run (node up, peers sync, the CNI plugin): this binary by default; another build to try it. */
  bin?: string;
}

/** Each node's peers: per family, the backend carrying it. */
type PeerModes = Map<string, { peer: string; family: Family; mode: string }[]>;

/** Node up and peers sync on every node; returns each node's peers and the backend carrying each family. */
export async function bringUp(lab: Lab): Promise<PeerModes> {
  await Promise.all(lab.nodes.map((n) => lab.nodeUp(n)));
  const reports = await Promise.all(lab.nodes.map((n) => lab.sync(n)));
  return new Map(lab.nodes.map((n, i) => [n.name, reports[i]!.peers.map((p) => ({ peer: p.name, family: p.family, mode: p.mode }))]));
}

/** The backends a node's peers use, per family (what the traffic counters must show). */
const modesByFamily = (peers: PeerModes): Map<string, Map<Family, Set<string>>> =>
  new Map(
    [...peers].map(([node, ps]) => {
      const m = new Map<Family, Set<string>>();
      for (const p of ps) m.set(p.family, (m.get(p.family) ?? new Set()).add(p.mode));
      return [node, m];
    }),
  );

async function liveTables(out: Report, lab: Lab, peers: PeerModes): Promise<void> {
  const nodeRows: (string | number)[][] = [];
  const peerRows: string[][] = [];
  // A column for the family only where there is more than IPv4 to tell apart.
  const showFamily = lab.family !== 'ipv4';
  for (const n of lab.nodes) {
    const macs = await Promise.all(
      lab.families.map(async (f) => {
        const vx = await run('ip', ['-n', n.ns, '-j', 'link', 'show', vxlanDevice(DEFAULT_VNI, f)]);
        return vx.code === 0 ? (JSON.parse(vx.stdout)[0]?.address ?? '-') : '-';
      }),
    );
    nodeRows.push([n.name, n.nets.map((x) => x.nodeIP).join(', '), n.nets.map((x) => x.podCIDR).join(', '), macs.join(', '), labPodMtu(n)]);
    const routes = [
      ...(await run('ip', ['-n', n.ns, 'route', 'show', 'proto', String(ROUTE_PROTO)])).stdout.trim().split('\n'),
      ...(await run('ip', ['-n', n.ns, '-6', 'route', 'show', 'proto', String(ROUTE_PROTO)])).stdout.trim().split('\n'),
    ];
    for (const { peer, family, mode } of peers.get(n.name) ?? []) {
      const cidr = lab.node(peer).nets.find((x) => x.family === family)!.podCIDR;
      const route = routes.find((r) => r.startsWith(cidr)) ?? 'MISSING';
      peerRows.push(showFamily ? [n.name, peer, familyName(family), mode, route] : [n.name, peer, mode, route]);
    }
  }
  out.table(
    'nodes',
    [
      ['node', t('col.node')],
      ['nodeIP', t('col.nodeIP')],
      ['podCIDR', `${t('col.podCIDR')} (${lab.families.map((f) => PLANS[f].clusterCIDR).join(', ')})`],
      ['vtepMac', t('col.vtepMac')],
      ['podMtu', t('col.podMtu')],
    ],
    nodeRows,
  );
  if (peerRows.length)
    out.table(
      'peers',
      [
        ['node', t('col.node')],
        ['peer', t('col.peer')],
        ...(showFamily ? [['family', t('col.family')] as const] : []),
        ['backend', t('col.backend')],
        ['route', t('col.route')],
      ],
      peerRows,
    );
}

function report(out: Report, checks: Check[]): number {
  // One row per proof and family, in the order they were made; --json keeps the ids, the tables the words.
  const keys = [...new Map(checks.map((c) => [`${c.proof}|${c.family}`, c])).values()];
  const rows = keys.map((k) => {
    const cs = checks.filter((c) => c.proof === k.proof && c.family === k.family);
    return { proof: k.proof, family: k.family, passed: cs.filter(passed).length, failed: cs.filter((c) => !passed(c)).length };
  });
  const failed = checks.filter((c) => !passed(c));
  if (out.json) {
    out.data.proofs = rows;
    out.data.failed = failed.map((c) => ({
      proof: c.proof,
      family: c.family,
      from: c.from,
      to: c.to,
      expected: c.expect ? 'works' : 'refused',
    }));
    return failed.length;
  }
  out.table(
    'proofs',
    [
      ['proof', t('col.proof')],
      ['passed', t('col.passed')],
      ['failed', t('col.failed')],
    ],
    rows.map((r) => [proofName(r.proof, r.family), r.passed, r.failed]),
  );
  if (failed.length)
    out.table(
      'failed',
      [
        ['proof', t('col.FAILED')],
        ['from', t('col.from')],
        ['to', t('col.to')],
        ['expected', t('col.expected')],
      ],
      failed.map((c) => [proofName(c.proof, c.family), c.from, c.to, c.expect ? 'works' : 'refused']),
    );
  return failed.length;
}

export async function runLab(o: LabOptions): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('the lab needs root: it creates network namespaces');
  if (!BACKENDS.includes(o.mode)) throw new Error(`--mode must be one of ${BACKENDS.join(', ')}`);
  if (!(o.podsPerNode >= 1)) throw new Error('--pods-per-node must be at least 1');
  if (!(o.nodes >= 1 && o.nodes <= 200)) throw new Error('--nodes must be from 1 to 200');
  if (labNamespaces().length) {
    say(t('lab.removePrevious'));
    labDown();
  }
  const bin = o.bin ?? podwireBinary();
  if (!existsSync(bin)) throw new Error(`${bin} not found: run npm run build`);
  const proxy = proxyMode(o.proxy);
  let failures = 0;
  const out = new Report(!!o.json);
  // Ctrl-C: the lab goes away as it would at the end (unless --keep), then the usual exit code.
  const interrupted = () => {
    if (!o.keep) labDown();
    say(o.keep ? t('lab.interrupted.kept') : t('lab.interrupted.removed'));
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  try {
    say(
      t('lab.step1', {
        nodes: o.nodes,
        mode: o.mode,
        family: o.family ?? 'ipv4',
        proxy,
        firewall: o.firewall ?? 'auto',
      }),
    );
    const lab = Lab.create(bin, o.mode, o.nodes, o.family ?? 'ipv4', o.firewall);
    lab.proxy = proxy;
    await Promise.all(lab.nodes.flatMap((n) => lab.families.map((f) => installCounters(n, DEFAULT_VXLAN_PORT, f))));
    say(t('lab.step2'));
    const peers = await bringUp(lab);
    await liveTables(out, lab, peers);

    say(t('lab.step3', { pods: o.podsPerNode }));
    await Promise.all(
      lab.nodes.map(async (n) => {
        for (let j = 1; j <= o.podsPerNode; j++) await lab.addPod(n, `pod${j}`, {}, o.trace && n === lab.nodes[0] && j === 1);
      }),
    );
    const traced = lab.pods.find((p) => p.trace);
    if (traced) out.text(`${t('lab.traceAdd', { pod: traced.name, node: traced.node.name })}\n\n${traced.trace!.trimEnd()}`, 'traceAdd');
    out.table(
      'pods',
      [
        ['pod', t('col.pod')],
        ['node', t('col.node')],
        ['podIP', t('col.podIP')],
        ['veth', t('col.veth')],
        ['ifname', t('col.ifname')],
      ],
      [...lab.pods]
        .sort((a, b) => a.ns.localeCompare(b.ns, 'en', { numeric: true }))
        .map((p) => [p.name, p.node.name, p.ips.join(', '), p.veth, 'eth0']),
    );

    say(t('lab.step4'));
    const { checks, counters } = await prove(lab, modesByFamily(peers));
    const dual = lab.family !== 'ipv4';
    out.table(
      'traffic',
      [
        ['node', t('col.node')],
        ...(dual ? [['family', t('col.family')] as const] : []),
        ['vxlanPackets', t('col.vxlanPackets', { port: DEFAULT_VXLAN_PORT })],
        ['plainPackets', t('col.plainPackets')],
        ['peersUse', t('col.peersUse')],
      ],
      counters.map((c) => [c.node, ...(dual ? [familyName(c.family)] : []), c.vxlan, c.plain, [...c.modes].join(', ') || '-']),
    );
    say(t('lab.step5', { rules: t(lab.proxy === 'nftables' ? 'lab.step5.nftables' : 'lab.step5.iptables') }));
    const svc = await addServices(lab);
    out.table(
      'services',
      PORT_COLUMNS.map(([k, id]) => [k, t(id)] as const),
      portRows(svc),
    );
    const hp = svc.services[1]!.backend;
    out.text(t('lab.hostPort', { hostPort: HOST_PORT, containerPort: TARGET_PORT, pod: hp.name, node: hp.node.name }));
    checks.push(...(await proveServices(lab, svc)));
    checks.push(...(await proveEphemeral(lab, svc)));
    if (o.policy) await showPolicy(lab, out, o.policy);
    failures = report(out, checks);
    if (o.diagram) {
      atomicWrite(o.diagram, await diagram(labScope(), t('diagram.titleLabRun', { nodes: o.nodes, mode: o.mode })));
      say(t('lab.diagram', { file: o.diagram }));
    }

    if (!o.keep) {
      say(t('lab.step6'));
      for (const p of [...lab.pods]) {
        const trace = await lab.delPod(p, p === traced);
        if (trace) out.text(`${t('lab.traceDel', { pod: p.name, node: p.node.name })}\n\n${trace.trimEnd()}`, 'traceDel');
      }
      await Promise.all(lab.nodes.map((n) => lab.nodeDown(n)));
      const left = lab.nodes.flatMap((n) => [...DiskStore.forNetwork(join(n.dir, 'ipam'), n.list.name).list().keys()]);
      if (left.length) throw new Error(`addresses left reserved after DEL: ${left.join(', ')}`);
      say(t('lab.allDeleted'));
    }
  } finally {
    process.off('SIGINT', interrupted);
    if (!o.keep) {
      labDown();
      say(t('lab.step7'));
    } else {
      say(t('lab.kept'));
    }
  }
  if (out.json) process.stdout.write(JSON.stringify({ mode: o.mode, ...out.data, ok: !failures }, null, 2) + '\n');
  else process.stdout.write(failures ? `${t('lab.failed', { n: failures })}\n` : `${t('lab.ok')}\n`);
  return failures ? 1 : 0;
}

/**
 * --policy FILE: upstream's netpol model (namespaces x, y, z with pods a, b, c, spread over the nodes,
 * serving 80 and 81 over TCP and UDP), the file's policies enforced on every node as the agent would,
 * and the reachability table of each port and protocol: rows from, columns to, "." reached, "X" not.
 */
async function showPolicy(lab: Lab, out: Report, file: string): Promise<void> {
  say(t('lab.policy', { file }));
  const doc = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  const policies = Array.isArray(doc) ? doc : ((doc as { items?: unknown[] }).items ?? [doc]);
  const pl = await addPolicyPods(lab);
  try {
    await applyPolicies(lab, pl, policies);
    for (const [port, proto] of [
      [80, 'tcp'],
      [81, 'tcp'],
      [80, 'udp'],
      [81, 'udp'],
    ] as const) {
      const m = await probeMatrix(pl, port, proto);
      out.text(`${t('lab.policyTable', { port, proto })}\n${matrixTable(m)}`, `policy${port}${proto}`);
    }
  } finally {
    stopPolicyLab(pl);
  }
}
