// The kube-proxy rules the lab installs (pure): kube-proxy's chain names and order, so that what the lab
// proves is what a cluster with kube-proxy in iptables mode does.
import { describe, expect, it } from 'vitest';
import type { LabPod } from '../../src/lab/lab.js';
import { kubeProxyRules } from '../../src/lab/services.js';

const pod = (...ips: string[]) => ({ ip: ips[0], ips, name: 'web', node: { name: 'node1' } }) as unknown as LabPod;

/** A ClusterIP Service and a NodePort one, each with one backend. */
const SERVICES = [
  { name: 'a', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], port: 80, targetPort: 8080, backend: pod('10.244.1.4') },
  {
    name: 'np',
    clusterIP: '10.96.0.12',
    clusterIPs: ['10.96.0.12'],
    port: 80,
    targetPort: 8080,
    nodePort: 30080,
    backend: pod('10.244.3.4'),
  },
];

describe('kube-proxy rules for the lab', () => {
  const lines = kubeProxyRules(SERVICES);
  const chains = lines.filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]!);

  it('declares kube-proxy-named chains that iptables accepts (at most 28 characters)', () => {
    expect(chains.slice(0, 4)).toEqual(['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ']);
    expect(chains.filter((c) => /^KUBE-(SVC|SEP|EXT)-[A-Z2-7]{16}$/.test(c))).toHaveLength(5);
    for (const c of chains) expect(c.length).toBeLessThanOrEqual(28);
  });

  it('Cluster IP → service chain → endpoint DNAT to the targetPort, hairpin marked for masquerade', () => {
    const svc = lines.find((l) => l.includes('-d 10.96.0.10/32') && l.startsWith('-A KUBE-SERVICES'))!.split(' -j ')[1]!;
    const sep = lines.find((l) => l.startsWith(`-A ${svc} `) && l.includes('-j KUBE-SEP-'))!.split(' -j ')[1]!;
    expect(lines).toContain(`-A ${sep} -s 10.244.1.4/32 -m comment --comment "lab/a:http" -j KUBE-MARK-MASQ`);
    expect(lines.filter((l) => l.startsWith(`-A ${sep} `)).pop()).toMatch(/-j DNAT --to-destination 10\.244\.1\.4:8080$/);
  });

  it("IPv6 (a dual-stack Service's second Cluster IP): /128 matches and a bracketed DNAT target, for ip6tables", () => {
    const dual = { name: 'a', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:10:96::10'], port: 80, targetPort: 8080 };
    const v6 = kubeProxyRules([{ ...dual, backend: pod('10.244.1.4', 'fd00:10:244:1::4') }], 6, 1);
    expect(v6.some((l) => l.startsWith('-A KUBE-SERVICES -d fd00:10:96::10/128 -p tcp'))).toBe(true);
    expect(v6.some((l) => l.includes('! -s fd00:10:244::/48 -d fd00:10:96::10/128'))).toBe(true);
    expect(v6.find((l) => l.includes('-j DNAT'))).toMatch(/--to-destination \[fd00:10:244:1::4\]:8080$/);
    expect(v6.join('\n')).not.toContain('10.96.0.10');
  });

  it('nodePorts are matched last in KUBE-SERVICES, and masqueraded', () => {
    const services = lines.filter((l) => l.startsWith('-A KUBE-SERVICES '));
    expect(services.pop()).toContain('--dst-type LOCAL -j KUBE-NODEPORTS');
    expect(lines.some((l) => l.startsWith('-A KUBE-NODEPORTS ') && l.includes('--dport 30080'))).toBe(true);
    expect(lines).toContain(
      '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    );
  });
});

describe('the Services read back from a nat table (podwire web)', () => {
  it('each Cluster IP:port with its nodePort and its backends, from what kube-proxy writes', async () => {
    const { parseNat, servicesOf } = await import('../../src/nat/walk-iptables.js');
    const rules = kubeProxyRules(SERVICES);
    // iptables-save writes what iptables-restore took, chain declarations first.
    expect(servicesOf(parseNat(rules.join('\n')))).toEqual([
      { name: 'lab/a:http', clusterIP: '10.96.0.10', port: 80, proto: 'tcp', backends: [{ ip: '10.244.1.4', port: 8080 }] },
      {
        name: 'lab/np:http',
        clusterIP: '10.96.0.12',
        port: 80,
        proto: 'tcp',
        nodePort: 30080,
        backends: [{ ip: '10.244.3.4', port: 8080 }],
      },
    ]);
    expect(servicesOf(parseNat(''))).toEqual([]);
  });
});
