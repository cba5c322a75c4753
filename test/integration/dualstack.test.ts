// The plugin on a dual-stack node: a pod gets one address per family from the node's slices, a default
// route per family, and its IPv6 address without duplicate address detection (ADD never waits for it);
// hostPorts answer in both families; CHECK and DEL cover both. The built binary, executed as a runtime
// does, in namespaces this test makes. Needs root.
import type { FirewallBackend } from '../../src/firewall/choose.js';
import { PER_POD, firewallText, hostPortTo, iptablesNat, nftTable } from '../helpers/firewall.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUPPORTED_VERSIONS, compareVersions } from '../../src/cni/version.js';
import { DiskStore } from '../../src/ipam/disk-store.js';
import { Sandbox, cni, linkNames, links, nsPath, ping, requireRoot, sh } from '../helpers/netns.js';
import { linkClient } from '../helpers/runtimes.js';

const box = new Sandbox();
beforeAll(requireRoot);
afterAll(() => box.cleanup());

const NET = 'dualnet';
const V4 = '10.244.1.0/24';
const V6 = 'fd00:10:244:1::/64';

function makeNode() {
  const node = box.ns('n');
  const dir = box.dir();
  const ipam = { type: 'podwire-ipam', ranges: [[{ subnet: V4 }], [{ subnet: V6 }]], dataDir: join(dir, 'ipam') };
  const conf = (cniVersion = '1.1.0', more: Record<string, unknown> = {}) => ({
    cniVersion,
    name: NET,
    type: 'podwire',
    logFile: join(dir, 'podwire.log'),
    capabilities: { portMappings: true },
    ...more,
    ipam,
  });
  const held = () => [...DiskStore.forNetwork(ipam.dataDir, NET).list().keys()].sort();
  return { node, dir, conf, held };
}

const pod = () => box.ns('p');
const ip6 = (ns: string, ...args: string[]) => sh('ip', ['-n', ns, '-6', ...args]);

describe.each(SUPPORTED_VERSIONS)('dual-stack, cniVersion %s', (v) => {
  it('one address per family, default routes for both, no DAD wait; CHECK and DEL cover both', async () => {
    const n = makeNode();
    const p = pod();
    const call = { containerID: 'd1', netns: nsPath(p), ifname: 'eth0' };
    const add = await cni(n.node, { ...call, command: 'ADD' }, n.conf(v));
    expect(add.code, add.stdout).toBe(0);
    const r = add.json;
    expect(r.ips.map((i: any) => [i.address, i.gateway, i.version])).toEqual([
      ['10.244.1.2/24', '10.244.1.1', compareVersions(v, '1.0.0') < 0 ? '4' : undefined],
      ['fd00:10:244:1::2/64', 'fd00:10:244:1::1', compareVersions(v, '1.0.0') < 0 ? '6' : undefined],
    ]);
    expect(r.routes).toEqual([
      { dst: '0.0.0.0/0', gw: '10.244.1.1' },
      { dst: '::/0', gw: 'fd00:10:244:1::1' },
    ]);
    // The kernel agrees, and the IPv6 address is usable at once: not "tentative" (DAD skipped).
    const eth0 = JSON.parse(ip6(p, '-j', 'addr', 'show', 'dev', 'eth0'))[0];
    const global = eth0.addr_info.find((a: any) => a.local === 'fd00:10:244:1::2');
    expect(global).toBeDefined();
    expect(global.tentative).toBeUndefined();
    expect(ip6(p, 'route', 'show', 'default')).toMatch(/^default via fd00:10:244:1::1 dev eth0/);
    expect(ping(p, 'fd00:10:244:1::1')).toBe(true);
    expect(ping(p, '10.244.1.1')).toBe(true);
    // The bridge has both gateways.
    const br = links(n.node).find((l) => l.ifname === 'cni0')!;
    expect(br.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(expect.arrayContaining(['10.244.1.1/24', 'fd00:10:244:1::1/64']));
    expect(n.held()).toEqual(['10.244.1.2', 'fd00:10:244:1::2']);

    if (compareVersions(v, '0.4.0') >= 0) {
      const check = await cni(n.node, { ...call, command: 'CHECK' }, n.conf(v, { prevResult: r }));
      expect(check.code, check.stdout).toBe(0);
    }
    for (let i = 0; i < 2; i++) expect((await cni(n.node, { ...call, command: 'DEL' }, n.conf(v, { prevResult: r }))).code).toBe(0);
    expect(n.held()).toEqual([]);
    expect(linkNames(n.node).filter((l) => l.startsWith('veth'))).toEqual([]);
    expect(linkNames(p)).toEqual(['lo']);
  });
});

describe('dual-stack pods on one node', () => {
  it('reach each other in both families', async () => {
    const n = makeNode();
    const [a, b] = [pod(), pod()];
    const ra = await cni(n.node, { command: 'ADD', containerID: 'a', netns: nsPath(a) }, n.conf());
    const rb = await cni(n.node, { command: 'ADD', containerID: 'b', netns: nsPath(b) }, n.conf());
    expect([ra.code, rb.code]).toEqual([0, 0]);
    const [b4, b6] = rb.json.ips.map((i: any) => i.address.split('/')[0]);
    expect(ping(a, b4)).toBe(true);
    expect(ping(a, b6)).toBe(true);
  });

  it.each<FirewallBackend>(['nftables', 'iptables'])(
    'a hostPort answers in both families; a hostIP names one; one of a family the pod lacks is refused and changes nothing (%s)',
    async (backend) => {
      const n = makeNode();
      const fw = { firewallBackend: backend };
      // A client on the node's network, both families.
      const client = box.ns('c');
      linkClient(n.node, client, '192.168.77.1', '192.168.77.2', ['fd00:77::1', 'fd00:77::2']);
      const web = pod();
      const rc = { ...fw, runtimeConfig: { portMappings: [{ hostPort: 8081, containerPort: 8080, protocol: 'tcp' }] } };
      const rules = () => (backend === 'nftables' ? nftTable(n.node) : iptablesNat(n.node));
      const add = await cni(n.node, { command: 'ADD', containerID: 'web', netns: nsPath(web) }, n.conf('1.1.0', rc));
      expect(add.code, add.stdout).toBe(0);
      const www = box.dir();
      writeFileSync(join(www, 'index.html'), 'hello over both families\n');
      const server = (await import('node:child_process')).spawn(
        'ip',
        ['netns', 'exec', web, 'busybox', 'httpd', '-f', '-p', '8080', '-h', www],
        {
          stdio: 'ignore',
        },
      );
      try {
        await new Promise((r) => setTimeout(r, 300));
        for (const host of ['192.168.77.1', '[fd00:77::1]']) {
          const page = sh('ip', ['netns', 'exec', client, 'curl', '-s', '--max-time', '5', `http://${host}:8081/`]);
          expect(page, host).toBe('hello over both families\n');
        }
        expect(hostPortTo(rules(), 8081, 'fd00:10:244:1::2', 8080)).toBe(true);
        expect(hostPortTo(rules(), 8081, '10.244.1.2', 8080)).toBe(true);
      } finally {
        server.kill();
      }
      const del = await cni(
        n.node,
        { command: 'DEL', containerID: 'web', netns: nsPath(web) },
        n.conf('1.1.0', { ...rc, prevResult: add.json }),
      );
      expect(del.code).toBe(0);
      expect(firewallText(n.node)).not.toMatch(PER_POD);

      // hostIP of one family: only that family's rules
      const only6 = {
        ...fw,
        runtimeConfig: { portMappings: [{ hostPort: 8082, containerPort: 8080, protocol: 'tcp', hostIP: 'fd00:77::1' }] },
      };
      const p6 = pod();
      expect((await cni(n.node, { command: 'ADD', containerID: 'v6only', netns: nsPath(p6) }, n.conf('1.1.0', only6))).code).toBe(0);
      if (backend === 'iptables') {
        expect(sh('ip', ['netns', 'exec', n.node, 'ip6tables-save', '-t', 'nat'])).toContain(
          '-d fd00:77::1/128 -p tcp -m tcp --dport 8082',
        );
        expect(sh('ip', ['netns', 'exec', n.node, 'iptables-save', '-t', 'nat'])).not.toContain('--dport 8082');
      } else {
        // one element, in the IPv6 hostIP map
        expect(nftTable(n.node)).toMatch(/map hostips6 \{[^}]*elements = \{ fd00:77::1 \. tcp \. 8082 comment/);
        expect(nftTable(n.node).match(/8082/g)).toHaveLength(1);
      }
      await cni(n.node, { command: 'DEL', containerID: 'v6only', netns: nsPath(p6) }, n.conf('1.1.0', only6));

      // An IPv6 hostIP for a pod that gets IPv4 only: code 7, nothing made.
      const v4conf = { ...n.conf('1.1.0'), ipam: { type: 'podwire-ipam', subnet: '10.244.9.0/24', dataDir: join(n.dir, 'ipam4') } };
      const bad = { ...fw, runtimeConfig: { portMappings: [{ hostPort: 8083, containerPort: 80, hostIP: 'fd00:77::1' }] } };
      const p4 = pod();
      const before = linkNames(n.node);
      const r = await cni(n.node, { command: 'ADD', containerID: 'bad', netns: nsPath(p4) }, { ...v4conf, ...bad });
      expect(r.json).toMatchObject({ code: 7, msg: expect.stringContaining('runtimeConfig.portMappings[0].hostIP') });
      expect(linkNames(n.node)).toEqual(before);
      expect(linkNames(p4)).toEqual(['lo']);
    },
  );
});
