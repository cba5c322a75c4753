// Reservations that no DEL will ever release: after a reboot (every pod namespace and veth gone, the store
// on disk kept, no GC — containerd never sends one) and after a pod namespace deleted without DEL. When
// the slice is full they come back; a live pod's address and an ADD's in flight never do. The built
// binary, executed as a runtime does, in namespaces this test makes. Needs root.
import type { FirewallBackend } from '../../src/firewall/choose.js';
import { PER_POD, firewallText, hostPortTo, iptablesNat, nftTable } from '../helpers/firewall.js';
import { existsSync, readFileSync, readdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskStore, currentBoot } from '../../src/ipam/disk-store.js';
import { BIN, REF_PLUGINS, Sandbox, cni, linkNames, links, nsPath, requireRoot, sh } from '../helpers/netns.js';

const box = new Sandbox();
beforeAll(requireRoot);
afterAll(() => box.cleanup());

const NET = 'podnet';
const EARLIER_BOOT = '.boot-00000000-0000-0000-0000-000000000000';

/** A node with a /29 (five Pod IPs: .2 to .6), its state under a temp dir. */
function makeNode(type: 'podwire' | 'bridge' = 'podwire', firewallBackend?: FirewallBackend) {
  const node = box.ns('n');
  const dir = box.dir();
  const ipam = { type: 'podwire-ipam', subnet: '10.244.9.0/29', dataDir: join(dir, 'ipam') };
  const conf =
    type === 'podwire'
      ? {
          cniVersion: '1.1.0',
          name: NET,
          type,
          logFile: join(dir, 'podwire.log'),
          capabilities: { portMappings: true },
          ipam,
          ...(firewallBackend ? { firewallBackend } : {}),
        }
      : // podwire-ipam reads logFile from the top level, which the bridge ignores
        { cniVersion: '1.0.0', name: NET, type, bridge: 'cni0', isGateway: true, logFile: join(dir, 'podwire.log'), ipam };
  const store = DiskStore.forNetwork(ipam.dataDir, NET);
  const bin = type === 'podwire' ? BIN : join(REF_PLUGINS, 'bridge');
  const call = (command: string, id: string, netns: string, more: object = {}) =>
    cni(node, { command, containerID: id, netns, path: `${join(dir, 'bin')}:${REF_PLUGINS}` }, { ...conf, ...more }, bin);
  // The reference bridge finds podwire-ipam in CNI_PATH, as installed.
  sh(BIN, ['install', '--bin-dir', join(dir, 'bin')]);
  const held = () => new Map([...store.list()].map(([ip, o]) => [ip, o.containerID]));
  const logLines = () =>
    existsSync(join(dir, 'podwire.log'))
      ? readFileSync(join(dir, 'podwire.log'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l))
      : [];
  /** What a reboot leaves on disk: the reservations, under a boot that is not this one. */
  const reboot = (pods: string[]) => {
    for (const p of pods) box.delNs(p);
    renameSync(join(store.dir, `.boot-${currentBoot()}`), join(store.dir, EARLIER_BOOT));
  };
  return { node, dir, conf, store, call, held, logLines, reboot };
}

const ipOf = (r: { json: any }) => String(r.json?.ips?.[0]?.address ?? '').split('/')[0];
const age = (file: string, ms: number) => utimesSync(file, new Date(Date.now() - ms), new Date(Date.now() - ms));

describe('reclaiming stale reservations when the slice is full', () => {
  it('after a reboot, pods start in a slice that was full, without GC; each reclaim is logged and counted', async () => {
    const n = makeNode();
    const before = Array.from({ length: 5 }, () => box.ns('p'));
    for (const [i, p] of before.entries()) expect((await n.call('ADD', `old${i}`, nsPath(p))).code).toBe(0);
    expect((await n.call('ADD', 'extra', nsPath(box.ns('p')))).json.code).toBe(100);
    n.reboot(before);

    // Five new pods at once: whichever ADD gets the lock first reclaims, the others find the addresses.
    const after = Array.from({ length: 5 }, () => box.ns('p'));
    const adds = await Promise.all(after.map((p, i) => n.call('ADD', `new${i}`, nsPath(p))));
    expect(adds.map((r) => r.code)).toEqual([0, 0, 0, 0, 0]);
    const ips = adds.map(ipOf);
    expect(new Set(ips).size).toBe(5);
    expect([...n.held().values()].sort()).toEqual(['new0', 'new1', 'new2', 'new3', 'new4']);
    for (const [i, p] of after.entries()) {
      expect(
        links(p)
          .find((l) => l.ifname === 'eth0')!
          .addr_info.map((a) => a.local),
      ).toContain(ips[i]);
    }
    // The new pods' reservations are this boot's and live: a sixth pod finds the slice full.
    expect((await n.call('ADD', 'sixth', nsPath(box.ns('p')))).json.code).toBe(100);
    expect([...n.held().values()]).not.toContain('sixth');
    expect(readdirSync(n.store.dir)).not.toContain(EARLIER_BOOT);

    const reclaims = n.logLines().filter((l) => l.msg === 'reclaimed a stale reservation');
    expect(reclaims.map((l) => l.containerID).sort()).toEqual(['old0', 'old1', 'old2', 'old3', 'old4']);
    expect(reclaims[0]).toMatchObject({ level: 40, why: expect.stringContaining('earlier boot') });
    // podwire status counts them
    writeFileSync(join(n.dir, 'net.conflist'), JSON.stringify({ cniVersion: '1.1.0', name: NET, plugins: [n.conf] }));
    const status = (json: boolean) =>
      sh('ip', ['netns', 'exec', n.node, BIN, 'status', '--conflist', join(n.dir, 'net.conflist'), ...(json ? ['--json'] : [])]);
    expect(JSON.parse(status(true)).reclaimed).toMatchObject({
      count: 5,
      last: expect.arrayContaining([expect.objectContaining({ ip: ips[0] })]),
    });
    expect(status(false)).toMatch(/^reclaim\s+5 stale reservation\(s\) reclaimed; last: 10\.244\.9\.\d of old\d/m);
  });

  it.each<FirewallBackend>(['nftables', 'iptables'])(
    'a pod namespace deleted without DEL gives its address back; live pods and an ADD in flight keep theirs (%s)',
    async (backend) => {
      const n = makeNode('podwire', backend);
      const pods = Array.from({ length: 4 }, () => box.ns('p'));
      const rc = { runtimeConfig: { portMappings: [{ hostPort: 8081, containerPort: 80, protocol: 'tcp' }] } };
      const first = await n.call('ADD', 'gone', nsPath(pods[0]!), rc);
      expect(first.code, first.stdout).toBe(0);
      for (let i = 1; i < 4; i++) expect((await n.call('ADD', `live${i}`, nsPath(pods[i]!))).code).toBe(0);
      const nat = () => firewallText(n.node);
      expect(hostPortTo(nat(), 8081, ipOf(first), 80)).toBe(true);
      expect(backend === 'nftables' ? nftTable(n.node) : iptablesNat(n.node)).toMatch(PER_POD);
      box.delNs(pods[0]!); // the runtime crashed: no DEL
      // All of them old enough not to be in flight (the live ones too: their veths keep them).
      for (const ip of n.held().keys()) age(join(n.store.dir, ip), 120_000);
      // An ADD in flight: reserved a moment ago, its veth not made yet.
      expect(n.store.reserve('10.244.9.6', { containerID: 'inflight', ifname: 'eth0' })).toBe(true);
      const liveBefore = [...n.held()].filter(([, id]) => id.startsWith('live'));

      // Two ADDs at once on a full slice: one stale address to reclaim, so exactly one gets it.
      const [x, y] = await Promise.all([n.call('ADD', 'x', nsPath(box.ns('p'))), n.call('ADD', 'y', nsPath(box.ns('p')))]);
      expect([x.code, y.code].sort()).toEqual([0, 1]);
      const won = x.code === 0 ? x : y;
      expect(ipOf(won)).toBe(ipOf(first));
      expect((x.code === 0 ? y : x).json.code).toBe(100);
      expect(n.held().get('10.244.9.6')).toBe('inflight');
      for (const [ip, id] of liveBefore) expect(n.held().get(ip)).toBe(id);
      // What the gone pod left besides its address went with it: its hostPort rules.
      expect(nat()).not.toMatch(PER_POD);
      const reclaim = n.logLines().find((l) => l.msg === 'reclaimed a stale reservation');
      expect(reclaim).toMatchObject({ containerID: 'gone', why: expect.stringMatching(/host veth veth[0-9a-f]{8} is gone/) });

      // Full again, nothing stale: STATUS says so (50), ADD says 100.
      expect((await n.call('STATUS', '', '')).json).toMatchObject({ code: 50, msg: expect.stringContaining('no free IP') });
      // The ADD in flight finishes (its veth appears): a DEL of it frees its address, and STATUS is fine.
      expect((await n.call('DEL', 'inflight', '')).code).toBe(0);
      expect((await n.call('STATUS', '', '')).code).toBe(0);
      expect(linkNames(n.node).filter((l) => l.startsWith('veth'))).toHaveLength(4);
    },
  );

  it('podwire-ipam under the reference bridge: an earlier boot is reclaimed; in the same boot nothing is, as nobody can tell', async () => {
    const n = makeNode('bridge');
    const pods = Array.from({ length: 5 }, () => box.ns('p'));
    for (const [i, p] of pods.entries()) expect((await n.call('ADD', `b${i}`, nsPath(p))).code, `b${i}`).toBe(0);
    // Same boot, pods gone without DEL, reservations old: the bridge's veths are not podwire's to judge.
    box.delNs(pods[0]!);
    for (const ip of n.held().keys()) age(join(n.store.dir, ip), 120_000);
    const full = await n.call('ADD', 'c0', nsPath(box.ns('p')));
    expect(full.json.code).toBe(100);
    // After a reboot they are stale whoever made them.
    n.reboot(pods.slice(1));
    const after = await n.call('ADD', 'c1', nsPath(box.ns('p')));
    expect(after.code, after.stdout).toBe(0);
    expect([...n.held().values()]).toEqual(['c1']);
  });

  it('STATUS answers 50 while the node subnet file is missing, naming it; ADD answers 11 (try again later)', async () => {
    const node = box.ns('n');
    const dir = box.dir();
    const file = join(dir, 'subnet.json');
    const conf = {
      cniVersion: '1.1.0',
      name: NET,
      type: 'podwire',
      ipam: { type: 'podwire-ipam', subnetFile: file, dataDir: join(dir, 'ipam') },
    };
    const status = await cni(node, { command: 'STATUS' }, conf);
    expect(status.json).toMatchObject({ code: 50, msg: expect.stringContaining(`node subnet file ${file} does not exist yet`) });
    const add = await cni(node, { command: 'ADD', containerID: 'early', netns: nsPath(box.ns('p')) }, conf);
    expect(add.json).toMatchObject({ code: 11, msg: expect.stringContaining(file) });
    expect(linkNames(node)).toEqual(['lo']); // nothing was made
    writeFileSync(file, JSON.stringify({ podCIDR: '10.244.3.0/24' }));
    expect((await cni(node, { command: 'STATUS' }, conf)).code).toBe(0);
  });
});
