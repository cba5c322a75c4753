// @ts-check
// npm run bench, NetworkPolicy: `podwire agent` following an API server with 1000 Pods in 50 Namespaces
// and 200 NetworkPolicies (the fake API server of the tests, in a namespace made here). Measured: the time
// from the agent's start to the table in the kernel; the time from an API change to the kernel — a new
// pod in a selected namespace (set elements only), a new policy (the table rewritten); the number of
// rules, and that it does not grow with pods (1000 more pods: the same rules). Target: <= 1 s from a change
// to the kernel; rules that grow with policies, not pods x policies. Nothing leaves the namespace.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { agentNode, until } from './bench-agent-node.mjs';
import { saveResults } from './bench-results.mjs';

const PODS = Number(process.env.BENCH_POLICY_PODS ?? 10000);
const POLICIES = Number(process.env.BENCH_POLICY_POLICIES ?? 1000);
const NAMESPACES = 50;
/** The agent's memory limit, as the DaemonSet sets it. */
const LIMIT_MIB = Number(
  /limits: \{ memory: (\d+)Mi \}/.exec(readFileSync(new URL('../deploy/podwire.yaml', import.meta.url), 'utf8'))?.[1],
);
const say = (/** @type {string} */ m) => process.stderr.write(`bench: ${m}\n`);
const n = await agentNode('pwbpol');
const { ns } = n;
const nft = (/** @type {string[]} */ ...args) => {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return r.status === 0 ? r.stdout : '';
};

const podIP = (/** @type {number} */ i) => `10.${128 + (i >> 16)}.${(i >> 8) & 255}.${i & 255 || 1}`;
/** Pod i: in namespace ns(i % 50), labels app a(i % 20) and tier, on node(i % 10) — node0 is this one. */
const pod = (/** @type {number} */ i) => ({
  metadata: { namespace: `ns${i % NAMESPACES}`, name: `p${i}`, labels: { app: `a${i % 20}`, tier: i % 3 ? 'web' : 'db' } },
  spec: { nodeName: `node${i % 10}`, containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] },
  status: { podIPs: [{ ip: podIP(i + 256) }] },
});
const policy = (/** @type {number} */ i) => ({
  metadata: { namespace: `ns${i % NAMESPACES}`, name: `pol${i}` },
  spec: {
    podSelector: { matchLabels: { app: `a${i % 20}` } },
    policyTypes: i % 4 ? ['Ingress'] : ['Ingress', 'Egress'],
    ingress: [
      {
        from: [
          {
            namespaceSelector: { matchLabels: { team: `t${i % 10}` } },
            podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }] },
          },
        ],
        ports: [{ port: 80 }, { port: 'http' }],
      },
      { from: [{ ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.1.0/24'] } }] },
    ],
    egress: [{ to: [{ podSelector: {} }], ports: [{ protocol: 'UDP', port: 53 }] }],
  },
});

let result;
try {
  const send = (/** @type {object[]} */ ops) => void n.send(ops).catch(() => {});
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node0', annotations: {} },
    spec: { podCIDR: '10.128.0.0/24', podCIDRs: ['10.128.0.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: '10.1.0.1' }] },
  };
  say(`${NAMESPACES} Namespaces, ${PODS} Pods, ${POLICIES} NetworkPolicies into the API server...`);
  const ops = [
    { op: 'add', node },
    ...Array.from({ length: NAMESPACES }, (_, i) => ({
      op: 'put',
      kind: 'Namespace',
      object: { metadata: { name: `ns${i}`, labels: { team: `t${i % 10}` } } },
    })),
    ...Array.from({ length: PODS }, (_, i) => ({ op: 'put', kind: 'Pod', object: pod(i) })),
    ...Array.from({ length: POLICIES }, (_, i) => ({ op: 'put', kind: 'NetworkPolicy', object: policy(i) })),
  ];
  await n.send(ops);
  const t0 = performance.now();
  const { agent, err } = n.startAgent();
  const full = () => /network policy: full \((\d+) policies, (\d+) rules, ([\d.]+) ms\)/g;
  const lastFull = () => [...err().matchAll(full())].at(-1);
  await until(() => !!lastFull(), 60_000, 20).catch((e) => {
    throw new Error(`${e.message}: agent said ${err().slice(-2000)}`);
  });
  const start = performance.now() - t0;
  /** The agent's resident memory now and at its peak, in MiB. */
  const mem = () => {
    const st = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
    const kb = (/** @type {string} */ k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? NaN) / 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  };
  const memAtStart = mem();
  const [, policies, rules, firstSyncMs] = lastFull() ?? [];
  const table = () => nft('list', 'table', 'inet', 'podwire-policy');

  say('a new pod in a selected namespace (set elements)...');
  // In ns10 (team t0), tier web: a peer of every policy whose rule takes team t0's web tier (pol0, pol10, ...),
  // which are the ones this node installs (they select app a0 or a10, the apps of node0's pods).
  const base = pod(PODS + 1);
  const newPod = { ...base, metadata: { ...base.metadata, namespace: 'ns10', labels: { app: 'a0', tier: 'web' } } };
  const newIP = newPod.status.podIPs[0].ip;
  // The agent says a sync once nft has committed it: its line is the moment the change is in the kernel
  // (listing a table of 10 000 elements to look for it would take longer than the change itself).
  const syncLines = () => [...err().matchAll(/network policy: (elements|full) \(/g)].length;
  let seen = syncLines();
  const t1 = performance.now();
  send([{ op: 'put', kind: 'Pod', object: newPod }]);
  await until(() => syncLines() > seen, 10_000, 5);
  const podChange = performance.now() - t1;
  if (!table().includes(newIP)) throw new Error(`the new pod ${newIP} is not in the table after the agent's sync`);
  const elementsMs = Number([...err().matchAll(/network policy: elements \(\d+ policies, \d+ rules, ([\d.]+) ms\)/g)].at(-1)?.[1] ?? NaN);

  say('a new policy (the table rewritten)...');
  const fullsBefore = [...err().matchAll(full())].length;
  seen = syncLines();
  const t2 = performance.now();
  // It selects app a0, which this node's pods have: only a policy that selects a local pod is installed here.
  const newPolicy = policy(POLICIES + 1);
  newPolicy.spec.podSelector = { matchLabels: { app: 'a0' } };
  send([{ op: 'put', kind: 'NetworkPolicy', object: { ...newPolicy, metadata: { namespace: 'ns0', name: 'pol-new' } } }]);
  await until(() => syncLines() > seen, 10_000, 5);
  const policyChange = performance.now() - t2;
  if (!table().includes('ns0/pol-new')) throw new Error("the new policy is not in the table after the agent's sync");
  await until(() => [...err().matchAll(full())].length > fullsBefore, 5_000);
  const rewriteMs = Number([...err().matchAll(full())].at(-1)?.[3] ?? NaN);
  const rulesAfterPolicy = Number([...err().matchAll(full())].at(-1)?.[2] ?? NaN);

  say(`${PODS} more pods: the rules stay, the elements grow...`);
  const before = table()
    .split('\n')
    .filter((l) => /^\s+(ip|ip6|meta|counter|ct|accept)/.test(l)).length;
  const syncs = () => [...err().matchAll(/network policy: (elements|full)/g)].length;
  const syncsBefore = syncs();
  send(Array.from({ length: PODS }, (_, i) => ({ op: 'put', kind: 'Pod', object: pod(PODS + 10 + i) })));
  // A pod of this node among them, in a namespace and with labels a local policy selects: in the table once synced.
  const lastLocal = pod(2 * PODS + 9 - ((2 * PODS + 9) % 20)).status.podIPs[0].ip;
  await until(() => syncs() > syncsBefore && table().includes(lastLocal), 30_000, 20);
  await new Promise((r) => setTimeout(r, 500)); // the burst's last sync
  const memAtEnd = mem();
  const after = table()
    .split('\n')
    .filter((l) => /^\s+(ip|ip6|meta|counter|ct|accept)/.test(l)).length;
  result = {
    pods: PODS,
    namespaces: NAMESPACES,
    policies: Number(policies),
    rules: Number(rules),
    startMs: start,
    firstSyncMs: Number(firstSyncMs),
    podChangeMs: podChange,
    elementsMs,
    rewriteMs,
    policyChangeMs: policyChange,
    rulesAfterPolicy,
    ruleLines: { [`${PODS} pods`]: before, [`${2 * PODS} pods`]: after },
    memAtStart,
    memAtEnd,
  };
} finally {
  for (const p of n.procs) p.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  n.cleanup();
}

const r = result;
const ms = (/** @type {number} */ x) => `${x.toFixed(0)} ms`;
process.stdout.write(
  `\nNetworkPolicy: the agent following ${r.pods} Pods in ${r.namespaces} Namespaces and ${r.policies} NetworkPolicies:\n` +
    '| | time | rules |\n|---|---:|---:|\n' +
    `| agent start → table in the kernel (its sync: ${ms(r.firstSyncMs)}) | ${ms(r.startMs)} | ${r.rules} |\n` +
    `| a pod added in a selected namespace → its address in the sets (the agent's sync: ${ms(r.elementsMs)}) | ${ms(r.podChangeMs)} | same |\n` +
    `| a policy added → the table rewritten (the agent's sync: ${ms(r.rewriteMs)}) | ${ms(r.policyChangeMs)} | ${r.rulesAfterPolicy} |\n` +
    `rule lines with ${Object.entries(r.ruleLines)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')} (target: the same)\n` +
    `target <= 1 s from a change to the kernel: ${Math.max(r.podChangeMs, r.policyChangeMs) <= 1000 ? 'met' : 'NOT met'}\n` +
    `the agent's resident memory: ${r.memAtStart.rss.toFixed(0)} MiB once started (peak ${r.memAtStart.peak.toFixed(0)}), ` +
    `${r.memAtEnd.rss.toFixed(0)} MiB after ${r.pods} more pods (peak ${r.memAtEnd.peak.toFixed(0)}); its limit in deploy/podwire.yaml: ${LIMIT_MIB} MiB ` +
    `(${r.memAtEnd.peak <= LIMIT_MIB ? 'within' : 'OVER'})\n`,
);
saveResults('policy', r);
