// The pure parts of status and path: finding the network config a runtime would use, and walking nat
// tables as kube-proxy and podwire write them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseNat, walkNat, walkSnat } from '../../src/nat/walk-iptables.js';
import { walkNftSnat } from '../../src/nat/walk-nftables.js';
import { nodeRules } from '../../src/firewall/node-iptables.js';
import { parseConntrack, parseTarget } from '../../src/explore/path.js';
import { findPodwireConf } from '../../src/explore/status.js';
import { hostportLines } from '../../src/nat/hostport.js';
import { kubeProxyRules } from '../../src/lab/services.js';

const dir = mkdtempSync(join(tmpdir(), 'podwire-explore-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('findPodwireConf', () => {
  it('takes the first file, by name, that has a podwire plugin, skipping broken ones', () => {
    writeFileSync(join(dir, '05-broken.conflist'), '{ not json');
    writeFileSync(join(dir, '10-other.conflist'), JSON.stringify({ name: 'other', plugins: [{ type: 'bridge' }] }));
    writeFileSync(
      join(dir, '20-pw.conflist'),
      JSON.stringify({ name: 'pw', plugins: [{ type: 'podwire', bridge: 'br9' }, { type: 'portmap' }] }),
    );
    writeFileSync(join(dir, '30-pw.conf'), JSON.stringify({ name: 'single', type: 'podwire' }));
    const c = findPodwireConf(dir);
    expect(c).toMatchObject({ file: join(dir, '20-pw.conflist'), network: 'pw', plugin: { bridge: 'br9' } });
    expect(() => findPodwireConf(join(dir, 'none'))).toThrow(
      /no network config with a podwire plugin in .*none \(give one with --conflist\)/,
    );
  });
});

describe('parseTarget', () => {
  it('an address with an optional port, IPv6 in brackets when it has one', () => {
    expect(parseTarget('10.96.0.10:80')).toEqual({ ip: '10.96.0.10', port: 80 });
    expect(parseTarget('10.244.1.2')).toEqual({ ip: '10.244.1.2', port: undefined });
    expect(parseTarget('[fd00:10:96::10]:80')).toEqual({ ip: 'fd00:10:96::10', port: 80 });
    expect(parseTarget('FD00:10:244:1:0::2')).toEqual({ ip: 'fd00:10:244:1::2', port: undefined });
    expect(parseTarget('[fd00::2]')).toEqual({ ip: 'fd00::2', port: undefined });
    expect(() => parseTarget('pod1')).toThrow(/"pod1" is not an address/);
    expect(() => parseTarget('[fd00::2]:99999')).toThrow(/out of range/);
    expect(() => parseTarget('10.0.0.1:70000')).toThrow(/out of range/);
  });
});

describe('walkNat', () => {
  const backend = { name: 'web', ip: '10.244.2.7', ips: ['10.244.2.7'] } as any;
  const table = parseNat(
    [
      ...kubeProxyRules([
        { name: 'web', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], port: 80, targetPort: 8080, backend },
        { name: 'np', clusterIP: '10.96.0.12', clusterIPs: ['10.96.0.12'], port: 80, targetPort: 8080, nodePort: 30080, backend },
      ]),
      '*nat',
      ':PODWIRE-HOSTPORTS - [0:0]',
      '-A PREROUTING -m addrtype --dst-type LOCAL -j PODWIRE-HOSTPORTS',
      ...hostportLines('PW-HP-0123456789abcdef', [{ hostPort: 8081, containerPort: 80, protocol: 'tcp' }], '10.244.1.9', '10.244.1.0/24'),
      'COMMIT',
    ].join('\n'),
  );
  const node = (ip: string) => ip === '192.168.50.11';

  it("a Cluster IP and port: KUBE-SERVICES > KUBE-SVC > KUBE-SEP's DNAT", () => {
    const pkt = { src: '10.244.1.2', dst: '10.96.0.10', proto: 'tcp', dport: 80, iif: 'cni0' };
    const r = walkNat(table, 'PREROUTING', pkt, node);
    expect(r.dnat).toEqual({ ip: '10.244.2.7', port: 8080 });
    expect(r.chains).toEqual(['PREROUTING', 'KUBE-SERVICES', expect.stringMatching(/^KUBE-SVC-/), expect.stringMatching(/^KUBE-SEP-/)]);
  });
  it('without a port, the Service port is filled in; another port or ICMP gets no DNAT', () => {
    const any = { src: '10.244.1.2', dst: '10.96.0.10', proto: 'tcp', iif: 'cni0' } as { dport?: number } & Record<string, any>;
    expect(walkNat(table, 'PREROUTING', any as any, node).dnat?.ip).toBe('10.244.2.7');
    expect(any.dport).toBe(80);
    expect(walkNat(table, 'PREROUTING', { src: '10.244.1.2', dst: '10.96.0.10', proto: 'tcp', dport: 81 }, node).dnat).toBeUndefined();
    expect(walkNat(table, 'PREROUTING', { src: '10.244.1.2', dst: '10.96.0.10', proto: 'icmp' }, node)).toEqual({ chains: [], choices: 0 });
  });
  it("a nodePort only on the node's own address (addrtype LOCAL), from OUTPUT too", () => {
    const r = walkNat(table, 'PREROUTING', { src: '192.168.50.250', dst: '192.168.50.11', proto: 'tcp', dport: 30080, iif: 'eth0' }, node);
    expect(r.dnat).toEqual({ ip: '10.244.2.7', port: 8080 });
    expect(r.chains.slice(0, 3)).toEqual(['PREROUTING', 'KUBE-SERVICES', 'KUBE-NODEPORTS']);
    expect(
      walkNat(table, 'PREROUTING', { src: '192.168.50.250', dst: '192.168.50.99', proto: 'tcp', dport: 30080 }, node).dnat,
    ).toBeUndefined();
    expect(walkNat(table, 'OUTPUT', { src: '192.168.50.11', dst: '192.168.50.11', proto: 'tcp', dport: 30080 }, node).dnat?.port).toBe(
      8080,
    );
  });
  it("podwire's hostPort chain", () => {
    const r = walkNat(table, 'PREROUTING', { src: '192.168.50.250', dst: '192.168.50.11', proto: 'tcp', dport: 8081, iif: 'eth0' }, node);
    expect(r.dnat).toEqual({ ip: '10.244.1.9', port: 80 });
    expect(r.chains).toEqual(['PREROUTING', 'PODWIRE-HOSTPORTS', 'PW-HP-0123456789abcdef']);
  });
});

describe('masquerade on the way out (POSTROUTING)', () => {
  const backend = { name: 'web', ip: '10.244.3.7', ips: ['10.244.3.7'] } as any;
  const [, nat] = nodeRules('10.244.0.0/16');
  const table = parseNat(
    [
      ...kubeProxyRules([
        { name: 'np', clusterIP: '10.96.0.12', clusterIPs: ['10.96.0.12'], port: 80, targetPort: 8080, nodePort: 30080, backend },
      ]),
      '*nat',
      ':PODWIRE-POSTROUTING - [0:0]',
      '-A POSTROUTING -j PODWIRE-POSTROUTING',
      ...nat!.rules.map((r) => `-A PODWIRE-POSTROUTING ${r}`),
      'COMMIT',
    ].join('\n'),
  );
  const node = (ip: string) => ip === '192.168.50.12';
  it("iptables: a pod's packet to the outside is masqueraded by podwire's chain; pod to pod is not", () => {
    expect(walkSnat(table, { src: '10.244.1.2', dst: '192.168.50.250', proto: 'tcp', dport: 80, oif: 'eth0' }, node)).toEqual({
      chains: ['POSTROUTING', 'PODWIRE-POSTROUTING'],
    });
    expect(walkSnat(table, { src: '10.244.1.2', dst: '10.244.3.7', proto: 'tcp', dport: 80, oif: 'podwire.1' }, node)).toBeUndefined();
  });
  it("iptables: a nodePort from outside is marked on the way in, and kube-proxy's KUBE-POSTROUTING masquerades it", () => {
    const pkt = { src: '192.168.50.250', dst: '192.168.50.12', proto: 'tcp', dport: 30080, iif: 'eth0' };
    expect(walkNat(table, 'PREROUTING', pkt, node).dnat).toEqual({ ip: '10.244.3.7', port: 8080 });
    expect((pkt as { mark?: number }).mark).toBe(0x4000);
    const out = { ...pkt, dst: '10.244.3.7', dport: 8080, oif: 'podwire.1' };
    expect(walkSnat(table, out, node)?.chains).toEqual(['POSTROUTING', 'KUBE-POSTROUTING']);
    // Unmarked, the same packet leaves with its own source.
    expect(walkSnat(table, { ...out, mark: 0 }, node)).toBeUndefined();
  });

  // table inet podwire as `nft -j` lists it (node-postrouting and pods-postrouting, as node up and ADD write them)
  const ip = (field: string) => ({ payload: { protocol: 'ip', field } });
  const prefix = (addr: string, len: number) => ({ prefix: { addr, len } });
  const m = (op: string, left: unknown, right: unknown) => ({ match: { op, left, right } });
  const listing = {
    nftables: [
      { chain: { family: 'inet', table: 'podwire', name: 'node-postrouting', type: 'nat', hook: 'postrouting', prio: 110 } },
      { chain: { family: 'inet', table: 'podwire', name: 'pods-postrouting', type: 'nat', hook: 'postrouting', prio: 110 } },
      { set: { name: 'masq4', elem: [{ elem: { val: '10.244.1.9', comment: 'x c/eth0' } }] } },
      { set: { name: 'masqown4', elem: [{ elem: { val: { concat: ['10.244.1.9', prefix('10.244.1.0', 24)] } } }] } },
      { rule: { chain: 'node-postrouting', expr: [{ counter: { packets: 1, bytes: 1 } }] } },
      { rule: { chain: 'node-postrouting', expr: [m('==', { '&': [{ meta: { key: 'mark' } }, 16384] }, 16384), { return: null }] } },
      {
        rule: {
          chain: 'node-postrouting',
          expr: [m('==', ip('saddr'), prefix('10.244.0.0', 16)), m('==', ip('daddr'), prefix('10.244.0.0', 16)), { return: null }],
        },
      },
      {
        rule: {
          chain: 'node-postrouting',
          expr: [
            m('==', ip('saddr'), prefix('10.244.0.0', 16)),
            m('!=', ip('daddr'), prefix('224.0.0.0', 4)),
            { masquerade: { flags: 'fully-random' } },
          ],
        },
      },
      { rule: { chain: 'pods-postrouting', expr: [m('==', { concat: [ip('saddr'), ip('daddr')] }, '@masqown4'), { return: null }] } },
      {
        rule: {
          chain: 'pods-postrouting',
          expr: [m('==', ip('saddr'), '@masq4'), m('!=', ip('daddr'), prefix('224.0.0.0', 4)), { masquerade: null }],
        },
      },
    ],
  };
  it('nftables: the same answers from the table, by priority, mark and sets', () => {
    const out = { src: '10.244.1.2', dst: '192.168.50.250', proto: 'tcp', dport: 80, oif: 'eth0' };
    expect(walkNftSnat(listing, out)).toEqual({ chains: ['inet podwire', 'node-postrouting'] });
    expect(walkNftSnat(listing, { ...out, dst: '10.244.3.7' })).toBeUndefined();
    expect(walkNftSnat(listing, { ...out, mark: 0x4000 })).toBeUndefined(); // kube-proxy's to masquerade: not ours
    // an ipMasq pod outside the cluster network: the masq4 set, not to its own subnet (masqown4)
    expect(walkNftSnat(listing, { ...out, src: '10.250.0.9' })).toBeUndefined();
    const own = { chains: ['inet podwire', 'pods-postrouting'] };
    expect(walkNftSnat(listing, { ...out, src: '10.244.1.9', mark: 0x4000 })).toEqual(own);
    expect(walkNftSnat(listing, { ...out, src: '10.244.1.9', dst: '10.244.1.3', mark: 0x4000 })).toBeUndefined();
    expect(walkNftSnat(listing, { ...out, src: 'fd00::2', dst: 'fd00:1::1' })).toBeUndefined(); // IPv4 rules only
  });
});

describe('parseConntrack', () => {
  it('reads the original and the reply tuple of each entry, with the state where the protocol has one', () => {
    const text = [
      'ipv4     2 tcp      6 117 TIME_WAIT src=10.244.1.4 dst=10.96.0.11 sport=41234 dport=80 src=10.244.3.3 dst=10.244.1.4 sport=8080 dport=41234 [ASSURED] mark=0 zone=0 use=2',
      'ipv4     2 udp      17 29 src=192.168.50.250 dst=192.168.50.12 sport=5353 dport=30053 [UNREPLIED] src=10.244.3.3 dst=10.244.2.0 sport=53 dport=5353 mark=0 zone=0 use=2',
      'garbage',
    ].join('\n');
    expect(parseConntrack(text)).toEqual([
      {
        proto: 'tcp',
        state: 'TIME_WAIT',
        orig: { src: '10.244.1.4', dst: '10.96.0.11', sport: 41234, dport: 80 },
        reply: { src: '10.244.3.3', dst: '10.244.1.4', sport: 8080, dport: 41234 },
      },
      {
        proto: 'udp',
        orig: { src: '192.168.50.250', dst: '192.168.50.12', sport: 5353, dport: 30053 },
        reply: { src: '10.244.3.3', dst: '10.244.2.0', sport: 53, dport: 5353 },
      },
    ]);
  });
});
