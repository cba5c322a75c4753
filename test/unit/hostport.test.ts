// hostPort rules (pure): what runtimes send is checked field by field, and the iptables-restore lines
// for an attachment, and for removing it from a live table, are exactly the attachment's.
import { describe, expect, it } from 'vitest';
import { delChainLines } from '../../src/nat/chains.js';
import { hostportLines } from '../../src/nat/hostport.js';
import { existsSync, readFileSync } from 'node:fs';
import type { CniError } from '../../src/cni/errors.js';
import { localAddresses } from '../../src/kernel/local-addrs.js';
import { checkNodePorts, parsePortMappings, reservedHostPorts } from '../../src/plugin/config.js';
import { attachmentNames } from '../../src/kernel/names.js';

describe('runtimeConfig.portMappings', () => {
  it('takes what kubelet and podman send (protocol in any case, hostIP empty or an address)', () => {
    expect(
      parsePortMappings([
        { hostPort: 8080, containerPort: 80, protocol: 'TCP', hostIP: '' },
        { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '192.168.50.11' },
        { hostPort: 9000, containerPort: 9000 },
      ]),
    ).toEqual([
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '192.168.50.11' },
      { hostPort: 9000, containerPort: 9000, protocol: 'tcp' },
    ]);
    expect(parsePortMappings(undefined)).toEqual([]);
  });

  it("takes containerd CRI's Go field names, as Go's decoder (and so the reference portmap) does", () => {
    expect(parsePortMappings([{ HostPort: 8081, ContainerPort: 8080, Protocol: 'tcp', HostIP: '' }])).toEqual([
      { hostPort: 8081, containerPort: 8080, protocol: 'tcp' },
    ]);
    // the exact key wins over one that differs only in case
    expect(parsePortMappings([{ hostport: 1, hostPort: 2, containerPort: 3 }])).toEqual([
      { hostPort: 2, containerPort: 3, protocol: 'tcp' },
    ]);
    expect(() => parsePortMappings([{ HostPort: 0, ContainerPort: 80 }])).toThrow(/portMappings\[0\]\.hostPort/);
  });

  it.each([
    [{}, /portMappings: must be a list/],
    [[{ hostPort: 0, containerPort: 80 }], /portMappings\[0\]\.hostPort: must be a port number/],
    [[{ hostPort: 80, containerPort: 70000 }], /portMappings\[0\]\.containerPort/],
    [[{ hostPort: 80, containerPort: 80, protocol: 'sctp' }], /portMappings\[0\]\.protocol: must be tcp or udp/],
    [[{ hostPort: 80, containerPort: 80, hostIP: 'nope' }], /portMappings\[0\]\.hostIP/],
    [['8080:80'], /portMappings\[0\]: must be an object/],
  ])('refuses %j, naming the field', (v, msg) => {
    expect(() => parsePortMappings(v)).toThrow(msg);
  });
});

describe('hostPort chains', () => {
  const chain = attachmentNames('podwire', 'abc', 'eth0').hostportChain;
  const lines = hostportLines(
    chain,
    parsePortMappings([
      { hostPort: 8080, containerPort: 80 },
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '192.168.50.11' },
    ]),
    '10.244.1.5',
    '10.244.1.0/24',
  );

  it('DNATs each hostPort to the pod and masquerades only same-subnet (hairpin) clients', () => {
    expect(chain).toMatch(/^PW-HP-[0-9a-f]{16}$/);
    expect(chain.length).toBeLessThanOrEqual(28);
    expect(lines).toEqual([
      `:${chain} - [0:0]`,
      `-A ${chain} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.244.1.5:80`,
      `-A ${chain} -d 192.168.50.11/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.244.1.5:53`,
      `-A PODWIRE-HOSTPORTS -m comment --comment "podwire: ${chain}" -j ${chain}`,
      `-A PODWIRE-HOSTPORT-MASQ -s 10.244.1.0/24 -d 10.244.1.5/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -m comment ` +
        `--comment "podwire: ${chain}" -j MASQUERADE`,
      `-A PODWIRE-HOSTPORT-MASQ -s 10.244.1.0/24 -d 10.244.1.5/32 -p udp -m udp --dport 53 -m conntrack --ctstate DNAT -m comment ` +
        `--comment "podwire: ${chain}" -j MASQUERADE`,
    ]);
  });

  it('IPv6: the same rules for ip6tables, the DNAT target in brackets, /128 host addresses', () => {
    const v6 = hostportLines(
      chain,
      parsePortMappings([{ HostPort: 8080, ContainerPort: 80, HostIP: 'fd00:50::11' }]),
      'fd00:10:244:1::5',
      'fd00:10:244:1::/64',
    );
    expect(v6).toEqual([
      `:${chain} - [0:0]`,
      `-A ${chain} -d fd00:50::11/128 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:10:244:1::5]:80`,
      `-A PODWIRE-HOSTPORTS -m comment --comment "podwire: ${chain}" -j ${chain}`,
      `-A PODWIRE-HOSTPORT-MASQ -s fd00:10:244:1::/64 -d fd00:10:244:1::5/128 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT ` +
        `-m comment --comment "podwire: ${chain}" -j MASQUERADE`,
    ]);
    // "::" is every address, as "" and 0.0.0.0 are; an address is written as the kernel writes it
    expect(parsePortMappings([{ hostPort: 1, containerPort: 2, hostIP: '::' }])[0]!.hostIP).toBeUndefined();
    expect(parsePortMappings([{ hostPort: 1, containerPort: 2, hostIP: 'FD00:0::1' }])[0]!.hostIP).toBe('fd00::1');
  });

  it("removal takes every rule naming the chain, and no other pod's", () => {
    const other = attachmentNames('podwire', 'xyz', 'eth0').hostportChain;
    const saved = [
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      `:${chain} - [0:0]`,
      `:${other} - [0:0]`,
      ...lines.slice(1),
      `-A PODWIRE-HOSTPORTS -m comment --comment "podwire: ${other}" -j ${other}`,
      'COMMIT',
    ];
    const del = delChainLines(saved, chain);
    expect(del).toEqual([...lines.slice(3).map((l) => '-D' + l.slice(2)), `-F ${chain}`, `-X ${chain}`]);
    expect(del.join('\n')).not.toContain(other);
    expect(delChainLines(['*nat', 'COMMIT'], chain)).toEqual([]);
  });
});

describe("the node's ports are the node's", () => {
  const conf = (more: Record<string, unknown> = {}) => ({ cniVersion: '1.0.0', name: 'n', type: 'podwire', ...more }) as never;
  const check = (mappings: unknown[], more: Record<string, unknown> = {}, local = ['192.168.50.11', 'fd00::11']) => {
    try {
      checkNodePorts(parsePortMappings(mappings), reservedHostPorts(conf(more)), () => new Set(local));
      return undefined;
    } catch (e) {
      return (e as CniError).message;
    }
  };

  it("refuses a hostPort the node needs (sshd, kubelet, the API server, VXLAN, podwire's own), naming the pod's port", () => {
    for (const [port, protocol] of [
      [22, 'tcp'],
      [10250, 'tcp'],
      [6443, 'tcp'],
      [2380, 'tcp'],
      [8472, 'udp'],
      [9471, 'tcp'],
    ] as const) {
      expect(
        check([
          { hostPort: 8080, containerPort: 80 },
          { hostPort: port, containerPort: 80, protocol },
        ]),
        `${port}`,
      ).toMatch(new RegExp(`runtimeConfig\\.portMappings\\[1\\]\\.hostPort.*${port}/${protocol} is a port the node itself needs`));
    }
    // the same number in the other protocol is not the node's
    expect(check([{ hostPort: 8472, containerPort: 80, protocol: 'tcp' }])).toBeUndefined();
    expect(check([{ hostPort: 8080, containerPort: 80 }])).toBeUndefined();
  });

  it('takes an operator list instead, and refuses a bad entry naming it', () => {
    expect(check([{ hostPort: 22, containerPort: 22 }], { reservedHostPorts: ['30000-32767/tcp'] })).toBeUndefined();
    expect(check([{ hostPort: 30080, containerPort: 80 }], { reservedHostPorts: ['30000-32767/tcp'] })).toMatch(/30000-32767\/tcp/);
    expect(check([{ hostPort: 1, containerPort: 2 }], { reservedHostPorts: ['22'] })).toMatch(/reservedHostPorts\[0\]/);
    expect(check([{ hostPort: 1, containerPort: 2 }], { reservedHostPorts: ['9-3/tcp'] })).toMatch(/reservedHostPorts\[0\]/);
  });

  it("refuses a hostIP that is not one of the node's addresses", () => {
    expect(check([{ hostPort: 8080, containerPort: 80, hostIP: '192.168.50.11' }])).toBeUndefined();
    expect(check([{ hostPort: 8080, containerPort: 80, hostIP: '192.168.50.99' }])).toMatch(
      /portMappings\[0\]\.hostIP.*192\.168\.50\.99 is not an address of this node/,
    );
  });

  it("reads this machine's own addresses from /proc, both families", () => {
    const local = localAddresses();
    expect(local.has('127.0.0.1')).toBe(true);
    if (existsSync('/proc/net/if_inet6') && readFileSync('/proc/net/if_inet6', 'utf8').includes('00000000000000000000000000000001'))
      expect(local.has('::1')).toBe(true);
  });
});
