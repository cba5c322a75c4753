// kube-proxy's nftables mode as the lab writes it (src/lab/services.ts), loaded into a namespace made
// here, and `path`'s walk of it (src/nat/walk-nftables.ts) read back from `nft -j`: a Cluster IP, a nodePort
// (Cluster and Local), both families, and what is not a Service; and the Services the pictures read from
// it, the same as from iptables mode.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabPod } from '../../src/lab/lab.js';
import { type LabService, kubeProxyNftRules, kubeProxyRules } from '../../src/lab/services.js';
import { servicesOfNft, walkKubeProxyNft } from '../../src/nat/walk-nftables.js';
import { parseNat, servicesOf } from '../../src/nat/walk-iptables.js';
import { requireRoot, sh } from '../helpers/netns.js';

const NS = 'pwtest-kpnft';
const pod = (node: string, ...ips: string[]) => ({ ip: ips[0], ips, name: 'web', node: { name: node } }) as unknown as LabPod;
const services: LabService[] = [
  {
    name: 'a',
    clusterIP: '10.96.0.10',
    clusterIPs: ['10.96.0.10', 'fd00:10:96::10'],
    port: 80,
    targetPort: 8080,
    backend: pod('node1', '10.244.1.4', 'fd00:10:244:1::4'),
  },
  {
    name: 'np',
    clusterIP: '10.96.0.12',
    clusterIPs: ['10.96.0.12', 'fd00:10:96::12'],
    port: 80,
    targetPort: 8080,
    nodePort: 30080,
    backend: pod('node2', '10.244.2.4', 'fd00:10:244:2::4'),
  },
  {
    name: 'loc',
    clusterIP: '10.96.0.13',
    clusterIPs: ['10.96.0.13', 'fd00:10:96::13'],
    port: 80,
    targetPort: 8080,
    nodePort: 30081,
    externalTrafficPolicy: 'Local',
    backend: pod('node2', '10.244.2.4', 'fd00:10:244:2::4'),
  },
];
const load = (f: 4 | 6, node: string, nodeIP: string) => {
  sh(
    'ip',
    ['netns', 'exec', NS, 'nft', '-f', '-'],
    kubeProxyNftRules(services, f, f === 4 ? 0 : 1, { name: node, nodeIP }).join('\n') + '\n',
  );
  return JSON.parse(sh('ip', ['netns', 'exec', NS, 'nft', '-j', 'list', 'table', f === 4 ? 'ip' : 'ip6', 'kube-proxy']));
};

beforeAll(() => {
  requireRoot();
  sh('ip', ['netns', 'add', NS]);
});
afterAll(() => {
  sh('ip', ['netns', 'del', NS]);
});

describe("kube-proxy's nftables mode, as the lab writes it", () => {
  it("nft takes the script; the table has the proxier's maps and chains; loading it again replaces it whole", () => {
    load(4, 'node1', '192.168.50.11');
    const t = load(4, 'node1', '192.168.50.11');
    const names = (k: string) => t.nftables.filter((o: any) => o[k]).map((o: any) => o[k].name);
    expect(names('map')).toEqual(expect.arrayContaining(['service-ips', 'service-nodeports', 'no-endpoint-services']));
    expect(names('chain')).toEqual(
      expect.arrayContaining([
        'services',
        'mark-for-masquerade',
        'masquerading',
        'nat-prerouting',
        'nat-output',
        'nat-postrouting',
        'filter-forward',
      ]),
    );
    expect(names('chain').filter((n: string) => n.startsWith('endpoint-'))).toHaveLength(3); // once each, not twice
  });

  it('path walks a Cluster IP and a nodePort to the endpoint DNAT, in both families; Local only where its backend runs', () => {
    const v4 = load(4, 'node1', '192.168.50.11');
    const cip = walkKubeProxyNft(v4, { src: '10.244.1.9', dst: '10.96.0.10', proto: 'tcp', dport: 80 });
    expect(cip.dnat).toEqual({ ip: '10.244.1.4', port: 8080 });
    expect(cip.chains[0]).toBe('services');
    expect(cip.chains[1]).toMatch(/^service-[A-Z2-7]{8}-lab\/a\/tcp\/http$/);
    expect(cip.chains[2]).toMatch(/^endpoint-[A-Z2-7]{8}-lab\/a\/tcp\/http__10\.244\.1\.4\/8080$/);
    const np = walkKubeProxyNft(v4, { src: '192.168.50.250', dst: '192.168.50.11', proto: 'tcp', dport: 30080 });
    expect(np.dnat).toEqual({ ip: '10.244.2.4', port: 8080 });
    expect(np.chains[1]).toMatch(/^external-/);
    // Local on a node without the backend: no element, no DNAT.
    expect(walkKubeProxyNft(v4, { src: '192.168.50.250', dst: '192.168.50.11', proto: 'tcp', dport: 30081 }).dnat).toBeUndefined();
    // not a Service port, not this node's address, not TCP
    expect(walkKubeProxyNft(v4, { src: '10.244.1.9', dst: '10.96.0.10', proto: 'tcp', dport: 81 }).dnat).toBeUndefined();
    expect(walkKubeProxyNft(v4, { src: '192.168.50.250', dst: '192.168.50.12', proto: 'tcp', dport: 30080 }).dnat).toBeUndefined();
    expect(walkKubeProxyNft(v4, { src: '10.244.1.9', dst: '10.96.0.10', proto: 'icmp' }).dnat).toBeUndefined();
    const v6 = load(6, 'node2', 'fd00:50::12');
    expect(walkKubeProxyNft(v6, { src: 'fd00:50::250', dst: 'fd00:50::12', proto: 'tcp', dport: 30081 }).dnat).toEqual({
      ip: 'fd00:10:244:2::4',
      port: 8080,
    });
    expect(walkKubeProxyNft(v6, { src: 'fd00:10:244:1::9', dst: 'fd00:10:96::10', proto: 'tcp', dport: 80 }).dnat).toEqual({
      ip: 'fd00:10:244:1::4',
      port: 8080,
    });
  });

  it('the pictures read the same Services from either mode: Cluster IP:port, backends, nodePort (Local only where its backend runs)', () => {
    for (const [node, nodeIP] of [
      ['node1', '192.168.50.11'],
      ['node2', '192.168.50.12'],
    ] as const) {
      const fromNft = servicesOfNft(load(4, node, nodeIP));
      sh('ip', ['netns', 'exec', NS, 'iptables-restore'], kubeProxyRules(services, 4, 0, node).join('\n'));
      const fromIptables = servicesOf(parseNat(sh('ip', ['netns', 'exec', NS, 'iptables-save', '-t', 'nat'])));
      expect(fromNft).toEqual(fromIptables);
      expect(fromNft.map((v) => [v.name, v.clusterIP, v.port, v.nodePort, v.backends])).toEqual([
        ['lab/a:http', '10.96.0.10', 80, undefined, [{ ip: '10.244.1.4', port: 8080 }]],
        ['lab/np:http', '10.96.0.12', 80, 30080, [{ ip: '10.244.2.4', port: 8080 }]],
        ['lab/loc:http', '10.96.0.13', 80, node === 'node2' ? 30081 : undefined, [{ ip: '10.244.2.4', port: 8080 }]],
      ]);
    }
    // A table with no Services, and no table at all.
    expect(servicesOfNft({ nftables: [] })).toEqual([]);
    expect(servicesOfNft(undefined)).toEqual([]);
  });
});
