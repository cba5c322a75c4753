// NetworkPolicy in both families and by host-gw routes: the same model (x, y, z × a, b, c) on a
// dual-stack lab whose nodes reach each other's pods by routes, not VXLAN; a set of upstream's cases,
// each table probed over IPv4 and over IPv6 (ipBlock in each family's own addresses).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabPod } from '../../src/lab/lab.js';
import { labDown } from '../../src/lab/netns.js';
import {
  type PolicyLab,
  Reachability,
  addPolicyPods,
  applyPolicies,
  matrixTable,
  probeMatrix,
  stopPolicyLab,
} from '../../src/policy/lab.js';
import { BIN, ROOT, requireRoot, sh } from '../helpers/netns.js';
import { until } from '../helpers/wait.js';

let lab: Lab;
let pl: PolicyLab;

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'host-gw', 3, 'dual');
  await bringUp(lab);
  pl = await addPolicyPods(lab);
}, 120_000);

afterAll(() => {
  if (pl) stopPolicyLab(pl);
  labDown();
});

const np = (ns: string, name: string, spec: object) => ({ metadata: { namespace: ns, name }, spec });
const sel = (labels: Record<string, string>) => ({ matchLabels: labels });

/** Applies the policies, then the 80/TCP and 80/UDP tables over IPv4 and over IPv6. */
async function check(policies: unknown[], want: (proto: string) => Reachability): Promise<void> {
  await applyPolicies(lab, pl, policies);
  for (const family of [0, 1]) {
    for (const proto of ['tcp', 'udp'] as const) {
      const got = await probeMatrix(pl, 80, proto, family);
      const expected = want(proto).final();
      const wrong = [...expected].filter(([k, v]) => got.get(k) !== v).map(([k]) => k);
      expect(wrong, `${family ? 'IPv6' : 'IPv4'} 80/${proto}:\n${matrixTable(got, expected)}`).toEqual([]);
    }
  }
}
const all = () => new Reachability(true);

describe('NetworkPolicy, dual-stack, host-gw', () => {
  it("should support a 'default-deny-ingress' policy", () =>
    check([np('x', 'deny', { podSelector: {} })], () => all().expect('*', 'x', false)));

  it('should enforce policy based on PodSelector and NamespaceSelector', () =>
    check(
      [
        np('x', 'yb', {
          podSelector: sel({ pod: 'a' }),
          ingress: [{ from: [{ namespaceSelector: sel({ ns: 'y' }), podSelector: sel({ pod: 'b' }) }] }],
        }),
      ],
      () => all().expect('*', 'x/a', false).expect('y/b', 'x/a', true),
    ));

  it('should deny egress from all pods in a namespace', () =>
    check([np('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })], () => all().expect('x', '*', false)));

  it('should not allow access by TCP when a policy specifies only UDP', () =>
    check([np('x', 'udp-80', { podSelector: sel({ pod: 'a' }), ingress: [{ ports: [{ protocol: 'UDP', port: 80 }] }] })], (proto) =>
      all().expect('*', 'x/a', proto === 'udp'),
    ));

  it('should allow egress access to server in CIDR block (each family its own block)', () => {
    const [v4, v6] = pl.pods.get('y/b')!.ips as [string, string];
    return check(
      [
        np('x', 'to-yb', {
          podSelector: sel({ pod: 'a' }),
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: `${v4}/32` } }, { ipBlock: { cidr: `${v6}/128` } }] }],
        }),
      ],
      () => all().expect('x/a', '*', false).expect('x/a', 'y/b', true),
    );
  });
});

describe('a pod cannot walk around a policy by forging an allowed address (host-gw, both families)', () => {
  const FORGE = join(ROOT, 'test', 'helpers', 'forge.py');
  const mac = (ns: string, dev: string) => JSON.parse(sh('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev]))[0].address as string;
  /** A UDP datagram from `from`'s eth0 to `to`:5000, with `src` as its source, through its node's bridge. */
  const send = (from: LabPod, src: string, to: LabPod, family: number, text: string) =>
    sh('ip', [
      'netns',
      'exec',
      from.ns,
      'python3',
      FORGE,
      'udp',
      'eth0',
      mac(from.ns, 'eth0'),
      mac(from.node.ns, 'cni0'),
      src,
      to.ips[family]!,
      '5000',
      text,
    ]);

  it.each([0, 1])(
    'family %s: x/a lets in y/b only; y/a (same node) and z/b (another node) forging y/b stay out, y/b gets in',
    async (family) => {
      await applyPolicies(lab, pl, [
        np('x', 'yb', {
          podSelector: sel({ pod: 'a' }),
          ingress: [{ from: [{ namespaceSelector: sel({ ns: 'y' }), podSelector: sel({ pod: 'b' }) }] }],
        }),
      ]);
      const [xa, ya, yb, zb] = ['x/a', 'y/a', 'y/b', 'z/b'].map((k) => pl.pods.get(k)!) as [LabPod, LabPod, LabPod, LabPod];
      expect(ya.node.name).toBe(xa.node.name);
      expect(zb.node.name).not.toBe(xa.node.name);
      const l = spawn('ip', ['netns', 'exec', xa.ns, 'python3', FORGE, 'listen', family ? '6' : '4', '5000', '1.5']);
      let out = '';
      l.stdout!.on('data', (d) => (out += d));
      await until(() => out.includes('listening'), 5000);
      const b = yb.ips[family]!;
      send(yb, b, xa, family, 'honest-y/b');
      send(ya, b, xa, family, 'y/a-as-y/b');
      send(zb, b, xa, family, 'z/b-as-y/b');
      await new Promise((r) => l.on('exit', r));
      expect(out.split('\n').slice(1).filter(Boolean)).toEqual([`${b} honest-y/b`]);
    },
  );
});
