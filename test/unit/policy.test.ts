// NetworkPolicy objects judged one at a time, selectors as labels.Selector matches, upstream's defaults,
// and the compiled table: rules that grow with policies (not with pods), pods changing only elements.
import { describe, expect, it } from 'vitest';
import { compile, elementUpdate, fullScript } from '../../src/policy/compile.js';
import { judgeObjects } from '../../src/policy/enforce.js';
import { matches, parsePod, parsePolicy, parseSelector } from '../../src/policy/model.js';
import { slimPod } from '../../src/policy/watch.js';

const pol = (ns: string, name: string, spec: object) => ({ metadata: { namespace: ns, name }, spec });
const pod = (ns: string, name: string, ip: string, labels: object = {}, node = 'node1', more: object = {}) => ({
  metadata: { namespace: ns, name, labels },
  spec: { nodeName: node, ...more },
  status: { podIPs: [{ ip }] },
});
const ns = (name: string, labels: object = {}) => ({ metadata: { name, labels } });

describe('policy objects', () => {
  it('policyTypes defaults to Ingress, plus Egress when there is an egress section; empty and absent rules differ', () => {
    expect(parsePolicy(pol('x', 'a', { podSelector: {} })).types).toEqual(['Ingress']);
    expect(parsePolicy(pol('x', 'a', { podSelector: {}, egress: [] })).types).toEqual(['Ingress', 'Egress']);
    expect(parsePolicy(pol('x', 'a', { podSelector: {}, policyTypes: ['Egress'] })).types).toEqual(['Egress']);
    const p = parsePolicy(pol('x', 'a', { podSelector: {}, ingress: [{}, { from: [] }, { from: [{ podSelector: {} }], ports: [] }] }));
    expect(p.ingress).toEqual([{}, {}, { peers: [{ podSelector: { matchLabels: {}, matchExpressions: [] } }] }]);
  });

  it('every matchExpressions operator; an empty selector matches everything', () => {
    const s = parseSelector(
      {
        matchLabels: { app: 'web' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['a', 'b'] },
          { key: 'env', operator: 'NotIn', values: ['prod'] },
          { key: 'team', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      },
      's',
    );
    expect(matches(s, { app: 'web', tier: 'a', team: 'x' })).toBe(true);
    expect(matches(s, { app: 'web', tier: 'c', team: 'x' })).toBe(false);
    expect(matches(s, { app: 'web', tier: 'a', team: 'x', env: 'prod' })).toBe(false);
    expect(matches(s, { app: 'web', tier: 'a' })).toBe(false);
    expect(matches(s, { app: 'web', tier: 'a', team: 'x', legacy: '1' })).toBe(false);
    expect(matches(parseSelector({}, 's'), { any: 'thing' })).toBe(true);
  });

  it('a policy that cannot be read isolates the pods it selects: in the compiled table they are isolated, nothing allows them', () => {
    const j = judgeObjects({
      policies: [pol('x', 'odd', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 0 }] }] })],
      pods: [pod('x', 'a', '10.244.1.2', { pod: 'a' }), pod('x', 'b', '10.244.1.3', { pod: 'b' })],
      namespaces: [ns('x')],
    });
    const c = compile(j.policies, j.pods, j.namespaces, 'node1');
    expect([...c.elements.get('in-iso4')!]).toEqual(['10.244.1.2']);
    expect([...c.elements.get('eg-iso4')!]).toEqual(['10.244.1.2']);
    expect(c.structure.filter((l) => / accept$/.test(l) && l.includes('p-'))).toEqual([]);
  });

  it('a bad object is left out with the field named; the others are used', () => {
    const j = judgeObjects({
      policies: [
        pol('x', 'good', { podSelector: {} }),
        pol('x', 'bad-port', { podSelector: {}, ingress: [{ ports: [{ port: 70000 }] }] }),
        pol('x', 'bad-op', { podSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] } }),
        pol('x', 'bad-except', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['192.168.0.0/16'] } }] }] }),
      ],
      pods: [pod('x', 'a', '10.244.1.2'), pod('x', 'evil', 'not-an-ip')],
      namespaces: [ns('x'), ns('Bad_Name')],
    });
    // The bad policies fail closed: each stands as a policy that isolates the pods it was meant for both ways
    // and allows nothing (bad-op's selector cannot be read: every pod of its namespace).
    expect(j.policies.map((p) => p.name)).toEqual(['good', 'bad-port', 'bad-op', 'bad-except']);
    for (const p of j.policies.slice(1)) expect(p).toMatchObject({ namespace: 'x', types: ['Ingress', 'Egress'], ingress: [], egress: [] });
    expect(j.policies[2]!.podSelector).toEqual({ matchLabels: {}, matchExpressions: [] });
    expect(j.leftOut.filter((l) => l.isolating).map((l) => l.name)).toEqual(['"x"/"bad-port"', '"x"/"bad-op"', '"x"/"bad-except"']);
    expect(j.pods.map((p) => p.name)).toEqual(['a']);
    expect(j.leftOut.map((l) => `${l.kind} ${l.name}: ${l.why}`)).toEqual([
      'NetworkPolicy "x"/"bad-port": spec.ingress[0].ports[0].port 70000 is not a port from 1 to 65535',
      'NetworkPolicy "x"/"bad-op": spec.podSelector.matchExpressions[0].operator "Near" is not In, NotIn, Exists or DoesNotExist',
      'NetworkPolicy "x"/"bad-except": spec.ingress[0].from[0].ipBlock.except[0] 192.168.0.0/16 is not inside 10.0.0.0/8',
      'Pod "x"/"evil": status.podIPs[0] "not-an-ip" is not an IP address',
      'Namespace "Bad_Name": metadata.name "Bad_Name" is not a valid name',
    ]);
  });
});

describe('the compiled table', () => {
  const policies = [
    pol('x', 'allow-from-y', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [
        { from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }, { protocol: 'UDP', port: 81, endPort: 90 }] },
      ],
    }),
    pol('x', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-80-tcp' }] }] }),
    pol('x', 'block', {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }] }],
    }),
  ];
  const many = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      pod(i % 2 ? 'y' : 'x', `p${i}`, `10.244.${1 + (i % 3)}.${10 + i}`, { pod: i % 3 ? 'b' : 'a' }, `node${1 + (i % 3)}`, {
        containers: [{ ports: [{ name: 'serve-80-tcp', containerPort: 80 }] }],
      }),
    );
  const namespaces = [ns('x', { ns: 'x' }), ns('y', { ns: 'y' })];
  const build = (n: number) => {
    const j = judgeObjects({ policies, pods: many(n), namespaces });
    return compile(j.policies, j.pods, j.namespaces, 'node1');
  };

  it('rules grow with policies, not with pods; pods are set elements', () => {
    const small = build(9);
    const big = build(900);
    expect(big.rules).toBe(small.rules);
    expect(big.fingerprint).toBe(small.fingerprint);
    expect([...big.elements.values()].flat().length).toBeGreaterThan(10 * [...small.elements.values()].flat().length);
    expect(
      small.structure.some(
        (l) =>
          /ip saddr \{ 10\.0\.0\.0-10\.0\.255\.255, 10\.2\.0\.0-10\.255\.255\.255 \}/.test(l) ||
          /ip daddr \{ 10\.0\.0\.0-10\.0\.255\.255, 10\.2\.0\.0-10\.255\.255\.255 \}/.test(l),
      ),
    ).toBe(true);
    expect(small.structure.some((l) => l.includes('meta l4proto . th dport { tcp . 80, udp . 81-90 }'))).toBe(true);
  });

  it('a pod more changes set elements only; a policy more rewrites the table whole', () => {
    const a = build(9);
    const b = build(10);
    const update = elementUpdate(a, b)!;
    expect(update.length).toBeGreaterThan(0);
    expect(update.every((l) => /^(add|delete) element inet podwire-policy /.test(l))).toBe(true);
    const j = judgeObjects({ policies: [...policies, pol('y', 'deny', { podSelector: {} })], pods: many(10), namespaces });
    const c = compile(j.policies, j.pods, j.namespaces, 'node1');
    expect(elementUpdate(b, c)).toBeUndefined();
    expect(fullScript(c).slice(0, 2)).toEqual(['add table inet podwire-policy', 'delete table inet podwire-policy']);
  });

  it('isolates only the pods a policy selects on this node; hostNetwork pods never', () => {
    const j = judgeObjects({
      policies: [pol('x', 'deny', { podSelector: {} })],
      pods: [
        pod('x', 'a', '10.244.1.2'),
        pod('x', 'b', '10.244.2.2', {}, 'node2'),
        pod('x', 'h', '192.168.50.11', {}, 'node1', { hostNetwork: true }),
      ],
      namespaces,
    });
    const c = compile(j.policies, j.pods, j.namespaces, 'node1');
    expect(c.elements.get('in-iso4')).toEqual(['10.244.1.2']);
    expect(c.elements.get('eg-iso4')).toEqual([]);
    expect(c.policies).toEqual([expect.objectContaining({ key: 'x/deny', selects: 1, types: ['Ingress'] })]);
  });

  it('a policy that selects no pod of this node is not installed here: no set, chain or rule; the others are', () => {
    const j = judgeObjects({
      policies: [
        pol('x', 'here', { podSelector: { matchLabels: { pod: 'a' } } }),
        pol('x', 'there', { podSelector: { matchLabels: { pod: 'b' } } }),
      ],
      pods: [pod('x', 'a', '10.244.1.2', { pod: 'a' }, 'node1'), pod('x', 'b', '10.244.2.2', { pod: 'b' }, 'node2')],
      namespaces: [ns('x')],
    });
    const c = compile(j.policies, j.pods, j.namespaces, 'node1');
    const [here, there] = c.policies;
    expect(here).toMatchObject({ key: 'x/here', selects: 1, selectsInCluster: 1 });
    expect(there).toMatchObject({ key: 'x/there', selects: 0, selectsInCluster: 1, rules: 0 });
    expect(c.structure.some((l) => l.includes(`p-${here!.id}-`))).toBe(true);
    expect(c.structure.some((l) => l.includes(`p-${there!.id}-`))).toBe(false);
  });

  it('the agent keeps of a Pod only what the policies read: slim, and read the same', () => {
    const full = {
      ...pod('x', 'a', '10.244.1.2', { pod: 'a' }, 'node1', {
        containers: [
          { name: 'c', image: 'big', env: [{ name: 'A', value: 'x'.repeat(1000) }], ports: [{ name: 'http', containerPort: 80 }] },
        ],
        volumes: [{ name: 'v' }],
      }),
    };
    (full.metadata as Record<string, unknown>).managedFields = [{ manager: 'kubelet', fieldsV1: { x: 'y'.repeat(1000) } }];
    const slim = slimPod(full);
    expect(JSON.stringify(slim).length).toBeLessThan(JSON.stringify(full).length / 5);
    expect(parsePod(slim)).toEqual(parsePod(full));
  });
});

describe('a rule whose peers are ipBlocks of one family', () => {
  it('allows nothing of the other family (no rule without a condition)', () => {
    const j = judgeObjects({
      policies: [
        pol('x', 'v4-block', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.244.2.7/32' } }] }] }),
      ],
      pods: [pod('x', 'a', '10.244.1.2')],
      namespaces: [ns('x')],
    });
    const rules = compile(j.policies, j.pods, j.namespaces, 'node1').structure.filter(
      (l) => l.includes(' p-') && l.startsWith('add rule') && l.includes('-eg '),
    );
    expect(rules.filter((l) => l.includes('accept'))).toEqual([
      expect.stringMatching(/ p-\w+-eg ip daddr \{ 10\.244\.2\.7 \} accept comment "x\/v4-block egress\[0\]"$/),
    ]);
  });
});

describe("client-node's typed objects", () => {
  it('read `_from` as `from` (an informer list gives the typed model)', () => {
    const p = parsePolicy(pol('x', 'typed', { podSelector: {}, ingress: [{ _from: [{ podSelector: {} }] }] }));
    expect(p.ingress[0]!.peers).toHaveLength(1);
  });
});
