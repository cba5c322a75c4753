// NetworkPolicy enforced by podwire's nftables table, proven as upstream's e2e proves it
// (test/e2e/network/netpol/network_policy.go): namespaces x, y, z × pods a, b, c spread over three nodes
// (VXLAN), TCP and UDP servers on 80 and 81, and per case the full 9×9 reachability table of each port
// and protocol probed, compared with the expected one. Cases are named after upstream's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bringUp } from '../../src/lab/index.js';
import { Lab } from '../../src/lab/lab.js';
import { labDown } from '../../src/lab/netns.js';
import {
  type Overrides,
  type PolicyLab,
  type Proto,
  Reachability,
  addPolicyPods,
  applyPolicies,
  matrixTable,
  probeMatrix,
  stopPolicyLab,
} from '../../src/policy/lab.js';
import { BIN, requireRoot, sh } from '../helpers/netns.js';
import { run } from '../../src/runtime/run.js';
import { kubeProxyRules } from '../../src/lab/services.js';

let lab: Lab;
let pl: PolicyLab;

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 3);
  await bringUp(lab);
  pl = await addPolicyPods(lab);
}, 120_000);

afterAll(() => {
  if (pl) stopPolicyLab(pl);
  labDown();
});

const np = (ns: string, name: string, spec: object) => ({ metadata: { namespace: ns, name }, spec });
const sel = (labels: Record<string, string>) => ({ matchLabels: labels });
const nsIs = (n: string) => ({ namespaceSelector: sel({ ns: n }) });
const podIs = (p: string) => ({ podSelector: sel({ pod: p }) });
type Want = (port: number, proto: Proto) => Reachability;
const PROBES: [number, Proto][] = [
  [80, 'tcp'],
  [81, 'tcp'],
  [80, 'udp'],
];

/**
 * Applies the policies, probes every table and compares each with the expected one. A table that differs
 * is probed again, up to twice, as upstream's e2e does: a probe is one datagram or one SYN with a 500 ms
 * timeout, 81 at once on a small machine, and one may be lost; a policy's mistake is there every time.
 */
async function check(policies: unknown[], want: Want, o: Overrides = {}, probes = PROBES): Promise<void> {
  await applyPolicies(lab, pl, policies, o);
  for (const [port, proto] of probes) {
    const expected = want(port, proto).final();
    let got = await probeMatrix(pl, port, proto);
    const differs = () => [...expected].filter(([k, v]) => got.get(k) !== v).map(([k]) => k);
    for (let again = 0; again < 2 && differs().length; again++) got = await probeMatrix(pl, port, proto);
    expect(differs(), `${port}/${proto}: got (! marks a difference)\n${matrixTable(got, expected)}`).toEqual([]);
  }
}
const all = () => new Reachability(true);

describe('NetworkPolicy, upstream cases', () => {
  it('with no policy, every pod reaches every pod', async () => {
    await check([], all);
    // and there is no table at all
    expect(sh('ip', ['netns', 'exec', lab.nodes[0]!.ns, 'nft', 'list', 'tables'])).not.toContain('podwire-policy');
  });

  it("should support a 'default-deny-ingress' policy", () =>
    check([np('x', 'deny-ingress', { podSelector: {} })], () => all().expect('*', 'x', false)));

  it("should support a 'default-deny-all' policy", () =>
    check([np('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })], () =>
      all().expect('*', 'x', false).expect('x', '*', false),
    ));

  it('should enforce policy to allow traffic from pods within server namespace based on PodSelector', () =>
    check([np('x', 'x-a-from-b', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [podIs('b')] }] })], () =>
      all().expect('*', 'x/a', false).expect('x/b', 'x/a', true),
    ));

  it('should enforce policy to allow ingress traffic for a target', () =>
    check(
      [np('x', 'deny-ingress', { podSelector: {} }), np('x', 'allow-all-to-a', { podSelector: sel({ pod: 'a' }), ingress: [{}] })],
      () => all().expect('*', 'x', false).expect('*', 'x/a', true),
    ));

  it('should enforce policy to allow ingress traffic from pods in all namespaces', () =>
    check([np('x', 'from-all-ns', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })], all));

  it('should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector', () =>
    check([np('x', 'from-y', { podSelector: {}, ingress: [{ from: [nsIs('y')] }] })], () =>
      all().expect('*', 'x', false).expect('y', 'x', true),
    ));

  it('should enforce policy based on PodSelector with MatchExpressions', () =>
    check(
      [
        np('x', 'expr', {
          podSelector: sel({ pod: 'a' }),
          ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b'] }] } }] }],
        }),
      ],
      () => all().expect('*', 'x/a', false).expect('x/b', 'x/a', true),
    ));

  it('should enforce policy based on NamespaceSelector with MatchExpressions', () =>
    check(
      [
        np('x', 'ns-expr', {
          podSelector: sel({ pod: 'a' }),
          ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'In', values: ['y'] }] } }] }],
        }),
      ],
      () => all().expect('*', 'x/a', false).expect('y', 'x/a', true),
    ));

  it('should enforce policy based on PodSelector or NamespaceSelector', () =>
    check(
      [
        np('x', 'or', {
          podSelector: sel({ pod: 'a' }),
          ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['x'] }] } }, podIs('b')] }],
        }),
      ],
      () => all().expect('x', 'x/a', false).expect('x/b', 'x/a', true),
    ));

  it('should enforce policy based on PodSelector and NamespaceSelector', () =>
    check(
      [
        np('x', 'and', {
          podSelector: sel({ pod: 'a' }),
          ingress: [
            {
              from: [
                {
                  namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['x'] }] },
                  podSelector: sel({ pod: 'b' }),
                },
              ],
            },
          ],
        }),
      ],
      () => all().expect('*', 'x/a', false).expect('y/b', 'x/a', true).expect('z/b', 'x/a', true),
    ));

  it('should enforce policy based on Multiple PodSelectors and NamespaceSelectors', () =>
    check(
      [
        np('x', 'multi', {
          podSelector: sel({ pod: 'a' }),
          ingress: [
            {
              from: [
                {
                  namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['x'] }] },
                  podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b', 'c'] }] },
                },
              ],
            },
          ],
        }),
      ],
      () =>
        all()
          .expect('*', 'x/a', false)
          .expect('y/b', 'x/a', true)
          .expect('y/c', 'x/a', true)
          .expect('z/b', 'x/a', true)
          .expect('z/c', 'x/a', true),
    ));

  it('should enforce policy based on any PodSelectors', () =>
    check([np('x', 'any', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [podIs('b'), podIs('c')] }] })], () =>
      all().expect('*', 'x/a', false).expect('x/b', 'x/a', true).expect('x/c', 'x/a', true),
    ));

  it('should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector', () =>
    check([np('x', 'ya', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [{ ...nsIs('y'), ...podIs('a') }] }] })], () =>
      all().expect('*', 'x/a', false).expect('y/a', 'x/a', true),
    ));

  it('should enforce policy based on Ports', () =>
    check(
      [np('x', 'port-81', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [nsIs('y')], ports: [{ port: 81, protocol: 'TCP' }] }] })],
      (port, proto) =>
        all()
          .expect('*', 'x/a', false)
          .expect('y', 'x/a', port === 81 && proto === 'tcp'),
    ));

  it('should enforce multiple, stacked policies with overlapping podSelectors', () =>
    check(
      [
        np('x', 'y-80', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [nsIs('y')], ports: [{ port: 80 }] }] }),
        np('x', 'y-81', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [nsIs('y')], ports: [{ port: 81 }] }] }),
      ],
      (_port, proto) =>
        all()
          .expect('*', 'x/a', false)
          .expect('y', 'x/a', proto === 'tcp'),
    ));

  it('should support allow-all policy', () => check([np('x', 'allow-all', { podSelector: {}, ingress: [{}] })], all));

  it('should allow ingress access on one named port', () =>
    check([np('x', 'named-81', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-tcp' }] }] })], (port, proto) =>
      all().expect('*', 'x', port === 81 && proto === 'tcp'),
    ));

  it('should allow ingress access from namespace on one named port', () =>
    check(
      [np('x', 'named-80-from-y', { podSelector: {}, ingress: [{ from: [nsIs('y')], ports: [{ port: 'serve-80-tcp' }] }] })],
      (port, proto) =>
        all()
          .expect('*', 'x', false)
          .expect('y', 'x', port === 80 && proto === 'tcp'),
    ));

  it('should allow egress access on one named port', () =>
    check(
      [np('x', 'egress-named-80', { podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'serve-80-tcp' }] }] })],
      (port, proto) => all().expect('x', '*', port === 80 && proto === 'tcp'),
    ));

  it('should enforce updated policy', async () => {
    await check([np('x', 'update', { podSelector: {}, ingress: [{ ports: [{ port: 81 }] }] })], (port, proto) =>
      all().expect('*', 'x', port === 81 && proto === 'tcp'),
    );
    await check([np('x', 'update', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] })], (port, proto) =>
      all().expect('*', 'x', port === 80 && proto === 'tcp'),
    );
  });

  it('should allow ingress access from updated namespace', async () => {
    const p = [np('x', 'from-ns2', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: sel({ ns2: 'updated' }) }] }] })];
    await check(p, () => all().expect('*', 'x', false));
    await check(p, () => all().expect('*', 'x', false).expect('y', 'x', true), { labels: { y: { ns2: 'updated' } } });
  });

  it('should allow ingress access from updated pod', async () => {
    const p = [
      np('x', 'from-updated', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [{ podSelector: sel({ pod2: 'updated' }) }] }] }),
    ];
    await check(p, () => all().expect('*', 'x/a', false));
    await check(p, () => all().expect('*', 'x/a', false).expect('x/b', 'x/a', true), { labels: { 'x/b': { pod2: 'updated' } } });
  });

  it('should deny ingress from pods on other namespaces', () =>
    check([np('x', 'same-ns', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })], () =>
      all().expect('*', 'x', false).expect('x', 'x', true),
    ));

  it('should deny ingress access to updated pod', async () => {
    const p = [np('x', 'deny-target', { podSelector: sel({ target: 'true' }), ingress: [] })];
    await check(p, all);
    await check(p, () => all().expect('*', 'x/a', false), { labels: { 'x/a': { target: 'true' } } });
  });

  it('should deny egress from pods based on PodSelector', () =>
    check([np('x', 'deny-egress-a', { podSelector: sel({ pod: 'a' }), policyTypes: ['Egress'] })], () => all().expect('x/a', '*', false)));

  it('should deny egress from all pods in a namespace', () =>
    check([np('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })], () => all().expect('x', '*', false)));

  it('should work with Ingress, Egress specified together', () =>
    check(
      [
        np('x', 'both', {
          podSelector: sel({ pod: 'a' }),
          policyTypes: ['Ingress', 'Egress'],
          ingress: [{ from: [podIs('b')] }],
          egress: [{ ports: [{ port: 80 }] }],
        }),
      ],
      (port, proto) =>
        all()
          .expect('*', 'x/a', false)
          .expect('x/b', 'x/a', true)
          .expect('x/a', '*', port === 80 && proto === 'tcp'),
    ));

  it('should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)', () =>
    check(
      [
        np('x', 'a-to-z-only', { podSelector: sel({ pod: 'a' }), policyTypes: ['Egress'], egress: [{ to: [nsIs('z')] }] }),
        np('y', 'from-xa', { podSelector: {}, ingress: [{ from: [{ ...nsIs('x'), ...podIs('a') }] }] }),
      ],
      () => all().expect('x/a', '*', false).expect('x/a', 'z', true).expect('*', 'y', false).expect('x/a', 'y', false),
    ));

  it('should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector', () =>
    check(
      [np('x', 'to-ya', { podSelector: sel({ pod: 'a' }), policyTypes: ['Egress'], egress: [{ to: [{ ...nsIs('y'), ...podIs('a') }] }] })],
      () => all().expect('x/a', '*', false).expect('x/a', 'y/a', true),
    ));

  it('should enforce ingress policy allowing any port traffic to a server on a specific protocol', () =>
    check([np('x', 'tcp-only', { podSelector: {}, ingress: [{ ports: [{ protocol: 'TCP' }] }] })], (_port, proto) =>
      all().expect('*', 'x', proto === 'tcp'),
    ));

  it('should not allow access by TCP when a policy specifies only UDP', () =>
    check([np('x', 'udp-81', { podSelector: sel({ pod: 'a' }), ingress: [{ ports: [{ protocol: 'UDP', port: 81 }] }] })], () =>
      all().expect('*', 'x/a', false),
    ));

  it('should enforce multiple ingress policies with ingress allow-all policy taking precedence', async () => {
    const only80 = np('x', 'only-80', { podSelector: sel({ pod: 'a' }), ingress: [{ ports: [{ port: 80 }] }] });
    await check([only80], (port, proto) => all().expect('*', 'x/a', port === 80 && proto === 'tcp'));
    await check([only80, np('x', 'allow-all', { podSelector: sel({ pod: 'a' }), ingress: [{}] })], all);
  });

  it('should enforce multiple egress policies with egress allow-all policy taking precedence', async () => {
    const only80 = np('x', 'only-80', { podSelector: sel({ pod: 'a' }), policyTypes: ['Egress'], egress: [{ ports: [{ port: 80 }] }] });
    await check([only80], (port, proto) => all().expect('x/a', '*', port === 80 && proto === 'tcp'));
    await check([only80, np('x', 'allow-all', { podSelector: sel({ pod: 'a' }), policyTypes: ['Egress'], egress: [{}] })], all);
  });

  it('should stop enforcing policies after they are deleted', async () => {
    await check([np('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })], () =>
      all().expect('*', 'x', false).expect('x', '*', false),
    );
    await check([], all);
  });

  it('should allow egress access to server in CIDR block', () => {
    const yb = pl.pods.get('y/b')!.ip;
    return check(
      [
        np('x', 'to-cidr', {
          podSelector: sel({ pod: 'a' }),
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: `${yb}/32` } }] }],
        }),
      ],
      () => all().expect('x/a', '*', false).expect('x/a', 'y/b', true),
    );
  });

  it('should enforce except clause while egress access to server in CIDR block', () => {
    const yb = pl.pods.get('y/b')!.ip;
    return check(
      [
        np('x', 'except', {
          podSelector: sel({ pod: 'a' }),
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: '10.244.0.0/16', except: [`${yb}/32`] } }] }],
        }),
      ],
      () => all().expect('x/a', 'y/b', false),
    );
  });

  it('should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed', () => {
    const yb = pl.pods.get('y/b')!.ip;
    return check(
      [
        np('x', 'except', {
          podSelector: sel({ pod: 'a' }),
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: '10.244.0.0/16', except: [`${yb}/32`] } }] }],
        }),
        np('x', 'allow-yb', {
          podSelector: sel({ pod: 'a' }),
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: `${yb}/32` } }] }],
        }),
      ],
      all,
    );
  });

  it('should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector', async () => {
    const egress = np('x', 'egress-a-to-b', { podSelector: sel({ pod: 'a' }), policyTypes: ['Egress'], egress: [{ to: [podIs('b')] }] });
    await check([egress], () => all().expect('x/a', '*', false).expect('x/a', 'x/b', true));
    await check([egress, np('x', 'deny-ingress-b', { podSelector: sel({ pod: 'b' }), policyTypes: ['Ingress'] })], () =>
      all().expect('x/a', '*', false).expect('*', 'x/b', false),
    );
  });

  it('should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label', () =>
    check(
      [
        np('x', 'default-label', {
          podSelector: {},
          ingress: [{ from: [{ namespaceSelector: sel({ 'kubernetes.io/metadata.name': 'y' }) }] }],
        }),
      ],
      () => all().expect('*', 'x', false).expect('y', 'x', true),
    ));

  // This kernel has no SCTP sockets to probe with; what SCTP rules must not do to TCP and UDP is provable.
  it("should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP", () =>
    check([np('x', 'sctp-80', { podSelector: {}, ingress: [{ ports: [{ protocol: 'SCTP', port: 80 }] }] })], () =>
      all().expect('*', 'x', false),
    ));

  it("should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP", () =>
    check([np('x', 'sctp-any', { podSelector: sel({ pod: 'a' }), ingress: [{ ports: [{ protocol: 'SCTP' }] }] })], () =>
      all().expect('*', 'x/a', false),
    ));

  it('should enforce policy based on Ports, range (endPort)', () =>
    check(
      [np('x', 'range', { podSelector: {}, ingress: [{ from: [nsIs('y')], ports: [{ port: 79, endPort: 80, protocol: 'TCP' }] }] })],
      (port, proto) =>
        all()
          .expect('*', 'x', false)
          .expect('y', 'x', port === 80 && proto === 'tcp'),
    ));
});

describe('without br_netfilter (bridge-nf-call-iptables and -ip6tables at 0): two pods on one node are judged too', () => {
  const setBrNf = (v: '0' | '1') => {
    for (const n of lab.nodes)
      sh('ip', [
        'netns',
        'exec',
        n.ns,
        'sysctl',
        '-qw',
        `net.bridge.bridge-nf-call-iptables=${v}`,
        `net.bridge.bridge-nf-call-ip6tables=${v}`,
      ]);
  };
  afterAll(() => setBrNf('1'));

  it('every pod sends its whole subnet through the node: no on-link route to its neighbours, only to its gateway', () => {
    setBrNf('0');
    const a = pl.pods.get('x/a')!;
    const routes = sh('ip', ['-n', a.ns, 'route', 'show'])
      .trim()
      .split('\n')
      .map((l) => l.trim());
    const gw = a.node.nets[0]!.podCIDR.replace(/0\/24$/, '1');
    expect(routes).toEqual([`default via ${gw} dev eth0`, `${gw} dev eth0 scope link`]);
  });

  it('default-deny-ingress, then an allow by pod: same-node pairs are judged as cross-node ones are', async () => {
    setBrNf('0');
    // x/a, y/a and z/a share node1 (9 pods over 3 nodes): their pairs cross no node.
    expect(['x/a', 'y/a', 'z/a'].map((k) => pl.pods.get(k)!.node.name)).toEqual(['node1', 'node1', 'node1']);
    await check([np('x', 'deny-ingress', { podSelector: {} })], () => all().expect('*', 'x', false));
    await check(
      [np('x', 'allow-from-y-a', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [{ ...nsIs('y'), ...podIs('a') }] }] })],
      () => all().expect('*', 'x/a', false).expect('y/a', 'x/a', true),
    );
  });
});

describe('explained: path, status and doctor', () => {
  const policy = np('x', 'a-from-y-80', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [nsIs('y')], ports: [{ port: 80 }] }] });
  const ip = (k: string) => pl.pods.get(k)!.ip;
  const path = async (from: string, to: string, port: number) => (await run(BIN, ['path', ip(from), `${ip(to)}:${port}`])).stdout;

  it('path names the rule that allows a packet, or the policy that isolates the pod it drops, bridged and across nodes', async () => {
    await applyPolicies(lab, pl, [policy]);
    // y/a and x/a share node1's bridge: the frame meets the forward hook there (br_netfilter).
    expect(await path('y/a', 'x/a', 80)).toMatch(
      /node1 +NetworkPolicy \(inet podwire-policy, forward hook, ingress\): to [\d.]+ allowed by x\/a-from-y-80 ingress\[0\]/,
    );
    const dropped = await path('y/a', 'x/a', 81);
    expect(dropped).toMatch(/DROPPED: to [\d.]+ is isolated by x\/a-from-y-80 ingress, and no rule of them allows this packet/);
    expect(dropped).toMatch(/NOT delivered/);
    // x/b is on node2: judged on node1, where x/a is, after the VXLAN hop.
    expect(await path('x/b', 'x/a', 80)).toMatch(/node1 +NetworkPolicy .*DROPPED/);
    // nothing isolates x/b: no policy hop at all
    expect(await path('x/a', 'x/b', 80)).not.toMatch(/NetworkPolicy/);
  });

  it('status lists the policies enforced and how many pods each selects; doctor names one that selects nothing and a named port no pod has', async () => {
    await applyPolicies(lab, pl, [
      policy,
      np('x', 'typo', { podSelector: sel({ pod: 'aa' }) }),
      np('y', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-99-tcp' }] }] }),
    ]);
    const st = await run(BIN, ['status', '--lab', 'node1']);
    expect(st.stdout).toMatch(/network policy: 3 NetworkPolicies enforced here/);
    expect(st.stdout).toMatch(/x\/a-from-y-80 +Ingress +1 +1 +\d+/);
    expect(st.stdout).toMatch(/x\/typo +Ingress +0 +0/);
    const doc = JSON.parse((await run(BIN, ['doctor', '--lab', 'node1', '--json', '--no-probe'])).stdout) as {
      findings: { check: string; ok: boolean; what: string }[];
    };
    const find = (c: string) => doc.findings.find((f) => f.check === c)!;
    expect(find('policy-selects-nothing')).toMatchObject({
      ok: false,
      what: expect.stringContaining('NetworkPolicy x/typo selects no pod'),
    });
    expect(find('policy-named-port')).toMatchObject({
      ok: false,
      what: expect.stringContaining('y/named: no pod has a container port named ingress serve-99-tcp/tcp'),
    });
    await applyPolicies(lab, pl, []);
  });
});

describe('Services', () => {
  it("a Service is judged on its endpoint, after kube-proxy's DNAT: its Cluster IP answers whom the backend's policy allows", async () => {
    const backend = pl.pods.get('x/a')!;
    const svc = { name: 'xa', clusterIP: '10.96.0.50', clusterIPs: ['10.96.0.50'], port: 8000, targetPort: 80, backend };
    for (const n of lab.nodes) {
      const r = await run('ip', ['netns', 'exec', n.ns, 'iptables-restore', '--noflush', '--wait'], {
        input: kubeProxyRules([svc], 4, 0, n.name).join('\n'),
      });
      expect(r.code, r.stderr).toBe(0);
    }
    await applyPolicies(lab, pl, [np('x', 'a-from-y', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [nsIs('y')] }] })]);
    const viaService = async (from: string) => (await pl.probers.get(from)!.ask([{ to: '10.96.0.50', port: 8000, proto: 'tcp' }]))[0];
    expect(await viaService('y/b')).toBe(true);
    expect(await viaService('z/c')).toBe(false);
    expect(await viaService('x/b')).toBe(false);
    await applyPolicies(lab, pl, []);
    expect(await viaService('z/c')).toBe(true);
  });
});
