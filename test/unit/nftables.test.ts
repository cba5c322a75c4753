// The nftables backend's pure parts: the elements a pod gets, reading them back from `nft -j`, moving
// iptables chains over, and what `auto` picks.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { type PodRules } from '../../src/firewall/backend.js';
import { kernelAtLeast } from '../../src/kernel/tools.js';
import { pickFirewall } from '../../src/firewall/choose.js';
import { podRulesFromSave } from '../../src/nat/chains.js';
import { addLines, parseTable, podElements, removeLines } from '../../src/firewall/nftables.js';

const pod: PodRules = {
  owner: '0123456789abcdef',
  label: 'ctr1/eth0',
  ip: '10.244.1.5',
  subnet: '10.244.1.0/24',
  masq: true,
  mappings: [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
    { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '192.168.50.11' },
    { hostPort: 9090, containerPort: 80, protocol: 'tcp', hostIP: 'fd00::11' },
  ],
};

describe('nftables elements', () => {
  it('a pod gets map and set elements only, each naming its owner; a hostIP of the other family is skipped', () => {
    const els = podElements(pod);
    expect(els.map(([s]) => s)).toEqual(['masq4', 'masqown4', 'hostports4', 'hairpin4', 'hostips4', 'hairpin4']);
    for (const [, e] of els) expect(e).toContain('comment "0123456789abcdef ctr1/eth0"');
    expect(els[2]![1]).toBe('tcp . 8080 comment "0123456789abcdef ctr1/eth0" : 10.244.1.5 . 80');
    expect(addLines([pod]).every((l) => l.startsWith('add element inet podwire '))).toBe(true);
  });

  it('a label that could end the quoted comment (an ifname may hold a quote) is made harmless; a bad owner is refused', () => {
    const evil = podElements({ ...pod, label: 'ctr1/e"}x;' });
    for (const [, e] of evil) expect(e).toContain('comment "0123456789abcdef ctr1/e__x_"');
    expect(() => podElements({ ...pod, owner: 'x" ; flush ruleset' })).toThrow(/not 16 hex digits/);
  });

  it('removal adds each element then deletes it by its key alone (gone whether or not it was there)', () => {
    const lines = removeLines([pod]);
    expect(lines).toHaveLength(12);
    expect(lines[5]).toBe('delete element inet podwire hostports4 { tcp . 8080 }');
    expect(lines.filter((l) => l.startsWith('delete ')).every((l) => !l.includes('comment'))).toBe(true);
  });

  it('the table read back gives each owner its rules, as they were added', () => {
    const listing = {
      nftables: [
        { chain: { name: 'hostports', table: 'podwire' } },
        { rule: { chain: 'hostports', comment: 'podwire abc123' } },
        { rule: { chain: 'hostports' } },
        { set: { name: 'masq4', elem: [{ elem: { val: '10.244.1.5', comment: '0123456789abcdef ctr1/eth0' } }, '10.9.9.9'] } },
        {
          set: {
            name: 'masqown4',
            elem: [
              {
                elem: {
                  val: { concat: ['10.244.1.5', { prefix: { addr: '10.244.1.0', len: 24 } }] },
                  comment: '0123456789abcdef ctr1/eth0',
                },
              },
            ],
          },
        },
        {
          map: {
            name: 'hostports4',
            elem: [[{ elem: { val: { concat: ['tcp', 8080] }, comment: '0123456789abcdef ctr1/eth0' } }, { concat: ['10.244.1.5', 80] }]],
          },
        },
        {
          map: {
            name: 'hostips4',
            elem: [
              [{ elem: { val: { concat: ['192.168.50.11', 'udp', 5353] }, comment: '0123456789abcdef' } }, { concat: ['10.244.1.5', 53] }],
            ],
          },
        },
      ],
    };
    const t = parseTable(listing);
    expect(t.chains.get('hostports')).toEqual({ rules: 2, fp: 'abc123', hook: undefined, prio: undefined });
    expect(t.strays).toBe(1);
    expect(t.pods).toEqual([
      {
        owner: '0123456789abcdef',
        label: 'ctr1/eth0',
        ip: '10.244.1.5',
        subnet: '10.244.1.0/24',
        masq: true,
        mappings: [
          { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
          { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '192.168.50.11' },
        ],
      },
    ]);
  });

  it('nft itself accepts the lines (checked with nft -c, nothing applied)', () => {
    const nft = (() => {
      try {
        execFileSync('nft', ['--version']);
        return true;
      } catch {
        return false;
      }
    })();
    if (!nft) return;
    const script = ['add table inet pwcheck', 'add map inet pwcheck m { type inet_proto . inet_service : ipv4_addr . inet_service; }'];
    expect(() => execFileSync('nft', ['-c', '-f', '-'], { input: script.join('\n') })).not.toThrow();
  });
});

describe('iptables chains read for a switch to nftables', () => {
  it('DNATs, the hairpin rule (the subnet) and the masquerade chain become one owner per address', () => {
    const saved = [
      ':PW-HP-0123456789abcdef - [0:0]',
      '-A PW-HP-0123456789abcdef -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.244.1.5:80',
      '-A PW-HP-0123456789abcdef -d 192.168.50.11/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.244.1.5:53',
      '-A PODWIRE-HOSTPORT-MASQ -s 10.244.1.0/24 -d 10.244.1.5/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -m comment --comment "podwire: PW-HP-0123456789abcdef" -j MASQUERADE',
      '-A POSTROUTING -s 10.244.1.7/32 -m comment --comment "podwire: PW-MASQ-fedcba9876543210" -j PW-MASQ-fedcba9876543210',
      '-A PW-MASQ-fedcba9876543210 -d 10.244.1.0/24 -j ACCEPT',
    ];
    expect(podRulesFromSave(saved)).toEqual([
      {
        owner: '0123456789abcdef',
        ip: '10.244.1.5',
        subnet: '10.244.1.0/24',
        masq: false,
        mappings: [
          { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
          { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '192.168.50.11' },
        ],
      },
      { owner: 'fedcba9876543210', ip: '10.244.1.7', subnet: '10.244.1.0/24', masq: true, mappings: [] },
    ]);
  });
});

describe('firewall auto', () => {
  it('nftables where nft is, iptables where only it is or where its FORWARD drops; a setting is kept as given', () => {
    expect(pickFirewall('auto', { nft: true, iptables: true, forwardPolicy: 'ACCEPT' }).backend).toBe('nftables');
    expect(pickFirewall('auto', { nft: true, iptables: false }).backend).toBe('nftables');
    expect(pickFirewall('auto', { nft: false, iptables: true }).backend).toBe('iptables');
    const drop = pickFirewall('auto', { nft: true, iptables: true, forwardPolicy: 'DROP' });
    expect(drop.backend).toBe('iptables');
    expect(drop.why).toMatch(/DROP/);
    expect(pickFirewall('nftables', { nft: true, iptables: true, forwardPolicy: 'DROP' }).backend).toBe('nftables');
    expect(pickFirewall('iptables', { nft: true, iptables: false }).why).toMatch(/configured/);
  });

  it('iptables on a kernel older than 5.6 (no NAT in the inet family before 5.2, no ranges in concatenated sets before 5.6), where it is installed', () => {
    const old = pickFirewall('auto', { nft: true, iptables: true, kernel: '5.4.0-150-generic' });
    expect(old).toEqual({
      backend: 'iptables',
      why: expect.stringContaining('kernel 5.4.0-150-generic is older than 5.6'),
    });
    expect(pickFirewall('auto', { nft: true, iptables: true, kernel: '5.10.0-28-amd64' }).backend).toBe('nftables');
    expect(pickFirewall('auto', { nft: true, iptables: true, kernel: '4.18.0-553.el8' }).backend).toBe('iptables');
    // Nothing better to pick: nftables, and node up's first transaction says what the kernel lacks.
    expect(pickFirewall('auto', { nft: true, iptables: false, kernel: '4.19.0' }).backend).toBe('nftables');
    expect(kernelAtLeast('6.18.44-fc', [5, 6])).toBe(true);
    expect(kernelAtLeast('5.6.0', [5, 6])).toBe(true);
    expect(kernelAtLeast('5.5.19', [5, 6])).toBe(false);
    expect(kernelAtLeast('unknown', [5, 6])).toBeUndefined();
  });
});
