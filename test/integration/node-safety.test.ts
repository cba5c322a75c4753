// The node is not a pod: the mistakes an operator can make in what a plugin is given — the node's own
// namespace as CNI_NETNS, a `bridge` that names one of the node's links, a pod subnet on top of the node's
// network — each tried in a namespace playing the node (an uplink veth with the node's addresses and
// default routes, a VXLAN device with an address, lo), against podwire and, in the same test, the
// reference bridge + host-local. podwire must refuse each one, naming the field, with the node exactly as
// before (links, addresses, routes, nat rules, reservations); the reference is recorded beside it, and
// podwire must do at least as well on every case. Needs root.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BIN, Sandbox, cni, linkNames, nsPath, requireRoot, sh } from '../helpers/netns.js';

const box = new Sandbox();
beforeAll(requireRoot);
afterAll(() => box.cleanup());

/** A node: uplink `up0` (192.168.77.2/24, fd00:77::2/64, default routes via .1 / ::1), VXLAN `vx0` with 10.99.0.0/32. */
function makeNode() {
  const ns = box.ns('node');
  const world = box.ns('world');
  const ip = (...a: string[]) => sh('ip', ['-n', ns, ...a]);
  // No IPv6 duplicate address detection: the node's state must not change on its own between two snapshots.
  for (const n of [ns, world])
    sh('ip', ['netns', 'exec', n, 'sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']);
  sh('ip', ['-n', ns, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'w0', 'netns', world]);
  ip('addr', 'add', '192.168.77.2/24', 'dev', 'up0');
  ip('addr', 'add', 'fd00:77::2/64', 'dev', 'up0', 'nodad');
  ip('link', 'set', 'up0', 'up');
  sh('ip', ['-n', world, 'link', 'set', 'w0', 'up']);
  ip('route', 'add', 'default', 'via', '192.168.77.1');
  ip('-6', 'route', 'add', 'default', 'via', 'fd00:77::1');
  // A default gateway outside every network the node has an address in (a cloud's onlink gateway).
  ip('route', 'add', 'default', 'via', '10.50.0.1', 'dev', 'up0', 'onlink', 'metric', '200');
  ip('link', 'add', 'vx0', 'type', 'vxlan', 'id', '9', 'local', '192.168.77.2', 'dstport', '8472', 'nolearning');
  ip('addr', 'add', '10.99.0.0/32', 'dev', 'vx0');
  ip('link', 'set', 'vx0', 'up');
  // The uplink's carrier comes up asynchronously (and its routes lose "linkdown" with it): wait for it.
  const upAt = Date.now() + 5000;
  while (JSON.parse(ip('-j', 'link', 'show', 'dev', 'up0'))[0].operstate !== 'UP' && Date.now() < upAt) sh('sleep', ['0.05']);
  return { ns, dir: box.dir() };
}

/** Everything a wrong ADD could change on the node, as text. */
function snapshot(node: { ns: string; dir: string }): string {
  const ex = (...a: string[]) => sh('ip', ['netns', 'exec', node.ns, ...a]);
  const rules = (tool: string) =>
    ex(tool, '-t', 'nat', '-S')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .join('\n');
  const files = (d: string): string[] => {
    try {
      return readdirSync(d, { recursive: true }).map(String).sort();
    } catch {
      return [];
    }
  };
  return [
    ex('ip', '-br', 'link', 'show'),
    ex('ip', '-br', 'addr', 'show'),
    ex('ip', 'route', 'show', 'table', 'all'),
    ex('ip', '-6', 'route', 'show', 'table', 'all'),
    rules('iptables'),
    rules('ip6tables'),
    files(join(node.dir, 'ipam')).join(' '),
  ].join('\n---\n');
}

interface Mistake {
  name: string;
  /** The mistake in the config (merged over a good one); `ipam` replaces the ipam section's slice. */
  conf?: Record<string, unknown>;
  ipam?: Record<string, unknown>;
  /** CNI_NETNS: the pod's (default), or one of the node's own. */
  netns?: 'node-by-name' | 'proc-self';
  /** The subnet file's content, for ipam.subnetFile. */
  subnetFile?: Record<string, unknown>;
  /** podwire's error: code and a part of the message naming the field. */
  code: number;
  msg: string;
}

const MISTAKES: Mistake[] = [
  { name: 'CNI_NETNS is the node by its /run/netns name', netns: 'node-by-name', code: 4, msg: 'CNI_NETNS' },
  { name: 'CNI_NETNS is /proc/self/ns/net', netns: 'proc-self', code: 4, msg: "node's own network namespace" },
  {
    name: 'bridge names the uplink (a veth)',
    conf: { bridge: 'up0' },
    code: 7,
    msg: 'bridge: up0 exists and is not a bridge (it is a veth',
  },
  { name: 'bridge names the VXLAN device', conf: { bridge: 'vx0' }, code: 7, msg: 'bridge: vx0 exists and is not a bridge (it is a vxlan' },
  { name: 'bridge names lo', conf: { bridge: 'lo' }, code: 7, msg: 'bridge: lo exists and is not a bridge' },
  {
    name: 'ipam.subnet equals the uplink network',
    ipam: { subnet: '192.168.77.0/24' },
    code: 7,
    msg: 'ipam.subnet: the pod subnet 192.168.77.0/24 overlaps 192.168.77.0/24',
  },
  {
    name: 'ipam.subnet inside the uplink network',
    ipam: { subnet: '192.168.77.128/25' },
    code: 7,
    msg: 'ipam.subnet: the pod subnet 192.168.77.128/25 overlaps',
  },
  {
    name: 'ipam.subnet containing the uplink network',
    ipam: { subnet: '192.168.0.0/16' },
    code: 7,
    msg: "holds the node's address 192.168.77.2",
  },
  {
    name: "ipam.subnet holding the node's onlink default gateway",
    ipam: { subnet: '10.50.0.0/24' },
    code: 7,
    msg: "holds the node's default gateway 10.50.0.1",
  },
  { name: 'ipam.subnet containing the VXLAN device address', ipam: { subnet: '10.98.0.0/15' }, code: 7, msg: 'overlaps 10.99.0.0/32' },
  {
    name: 'ipam.ranges (IPv6) equal to the uplink network',
    ipam: { ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:77::/64' }]] },
    code: 7,
    msg: 'ipam.ranges[1][0].subnet: the pod subnet fd00:77::/64 overlaps',
  },
  {
    name: "the subnet file's podCIDR overlaps the uplink",
    subnetFile: { podCIDR: '192.168.77.0/25', clusterCIDR: '192.168.0.0/16' },
    code: 7,
    msg: 'ipam.subnetFile: the pod subnet 192.168.77.0/25 overlaps',
  },
];

/** The same mistake as the reference bridge + host-local would get it. */
function referenceConf(m: Mistake, dir: string) {
  const ipam =
    m.subnetFile !== undefined
      ? { subnet: m.subnetFile.podCIDR }
      : m.ipam?.ranges !== undefined
        ? { ranges: m.ipam.ranges }
        : { subnet: (m.ipam?.subnet as string | undefined) ?? '10.244.1.0/24' };
  return {
    cniVersion: '1.0.0',
    name: 'podnet',
    type: 'bridge',
    bridge: (m.conf?.bridge as string | undefined) ?? 'cni0',
    isGateway: true,
    ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ...ipam },
  };
}

function podwireConf(m: Mistake, dir: string) {
  let ipam: Record<string, unknown> = { subnet: '10.244.1.0/24', ...m.ipam };
  if (m.ipam?.ranges) ipam = { ranges: m.ipam.ranges };
  if (m.subnetFile) {
    const f = join(dir, 'subnet.json');
    writeFileSync(f, JSON.stringify(m.subnetFile));
    ipam = { subnetFile: f };
  }
  return {
    cniVersion: '1.1.0',
    name: 'podnet',
    type: 'podwire',
    logFile: join(dir, 'podwire.log'),
    ...m.conf,
    ipam: { type: 'podwire-ipam', dataDir: join(dir, 'ipam'), ...ipam },
  };
}

/** One mistake against one plugin on a fresh node: did the node stay as it was, and what was said. */
async function attempt(m: Mistake, which: 'podwire' | 'reference') {
  const node = makeNode();
  const podNs = box.ns('pod');
  const before = snapshot(node);
  const netns = m.netns === 'node-by-name' ? nsPath(node.ns) : m.netns === 'proc-self' ? '/proc/self/ns/net' : nsPath(podNs);
  const call = { command: 'ADD', containerID: `c-${which}`, netns, ifname: m.netns ? 'eth9' : 'eth0' };
  const conf = which === 'podwire' ? podwireConf(m, node.dir) : referenceConf(m, node.dir);
  const reply = await cni(node.ns, call, conf, which === 'podwire' ? BIN : '/usr/lib/cni/bridge');
  return { untouched: snapshot(node) === before, reply, before, after: snapshot(node), podLinks: linkNames(podNs) };
}

it('each mistake is refused, naming the field, with the node exactly as before; the reference does no better on any', async () => {
  const table: string[] = [];
  for (const m of MISTAKES) {
    const [pw, ref] = [await attempt(m, 'podwire'), await attempt(m, 'reference')];
    table.push(
      `${m.name}: reference ${ref.reply.code === 0 ? 'succeeded' : 'refused'}, node ${ref.untouched ? 'untouched' : 'CHANGED'}; ` +
        `podwire ${pw.reply.code === 0 ? 'succeeded' : `refused (${pw.reply.json?.code})`}, node ${pw.untouched ? 'untouched' : 'CHANGED'}`,
    );
    expect(pw.reply.code, `${m.name}: ${pw.reply.stdout}`).not.toBe(0);
    expect(pw.reply.json, m.name).toMatchObject({ code: m.code, msg: expect.stringContaining(m.msg) });
    expect(pw.after, m.name).toBe(pw.before);
    expect(pw.podLinks, m.name).toEqual(['lo']);
    // at least as well: wherever the reference keeps the node, so does podwire (it does so everywhere)
    expect(pw.untouched || !ref.untouched, m.name).toBe(true);
  }
  process.stderr.write(`${table.join('\n')}\n`);
  // The cases are real mistakes: the reference lets the node be changed by some of them.
  expect(table.some((l) => l.includes('reference succeeded, node CHANGED'))).toBe(true);
});

it('a good config on the same node works: the guard refuses only what would hurt it', async () => {
  const node = makeNode();
  const podNs = box.ns('pod');
  const m: Mistake = { name: 'none', code: 0, msg: '' };
  const add = await cni(node.ns, { command: 'ADD', containerID: 'ok', netns: nsPath(podNs) }, podwireConf(m, node.dir));
  expect(add.code, add.stdout).toBe(0);
  expect(linkNames(node.ns)).toContain('cni0');
  const del = await cni(node.ns, { command: 'DEL', containerID: 'ok', netns: nsPath(podNs) }, podwireConf(m, node.dir));
  expect(del.code, del.stdout).toBe(0);
});

it('with a delegated IPAM plugin (host-local) the subnet is checked before the bridge is made; its address and the veth are given back', async () => {
  const node = makeNode();
  const podNs = box.ns('pod');
  const before = snapshot(node).split('\n---\n').slice(0, 6).join('\n---\n'); // all but the IPAM store's files
  const conf = {
    ...podwireConf({ name: 'delegated', code: 7, msg: '' }, node.dir),
    cniVersion: '1.0.0', // Debian's host-local speaks up to 1.0.0
    ipam: { type: 'host-local', subnet: '192.168.77.0/24', dataDir: join(node.dir, 'hl') },
  };
  const add = await cni(node.ns, { command: 'ADD', containerID: 'hl', netns: nsPath(podNs) }, conf);
  expect(add.json).toMatchObject({ code: 7, msg: expect.stringContaining('the pod subnet 192.168.77.0/24 overlaps 192.168.77.0/24') });
  expect(snapshot(node).split('\n---\n').slice(0, 6).join('\n---\n')).toBe(before);
  expect(linkNames(podNs)).toEqual(['lo']);
  // host-local was asked to release what it handed out: no reservation file is left.
  const store = join(node.dir, 'hl', 'podnet');
  expect(readdirSync(store).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))).toEqual([]);
});

it('the gateways note that cannot be written or read costs a check, never a pod', async () => {
  const node = makeNode();
  const [p1, p2] = [box.ns('pod'), box.ns('pod')];
  const conf = podwireConf({ name: 'none', code: 0, msg: '' }, node.dir);
  // A directory where the note goes: reading it fails (EISDIR), and so does renaming the note over it.
  mkdirSync(join(node.dir, 'ipam', 'podnet', '.gateways', 'x'), { recursive: true });
  for (const [id, p] of [
    ['n1', p1],
    ['n2', p2],
  ] as const) {
    const add = await cni(node.ns, { command: 'ADD', containerID: id, netns: nsPath(p) }, conf);
    expect(add.code, add.stdout).toBe(0);
  }
  expect(readFileSync(join(node.dir, 'podwire.log'), 'utf8')).toContain('cannot write the gateways note');
  expect(readdirSync(join(node.dir, 'ipam', 'podnet')).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
});

it('a bridge replaced by another kind of link after it was checked: the batch refuses it before any address lands', async () => {
  const node = makeNode();
  const [p1, p2] = [box.ns('pod'), box.ns('pod')];
  const m: Mistake = { name: 'none', code: 0, msg: '' };
  const conf = podwireConf(m, node.dir);
  expect((await cni(node.ns, { command: 'ADD', containerID: 'a', netns: nsPath(p1) }, conf)).code).toBe(0);
  expect((await cni(node.ns, { command: 'DEL', containerID: 'a', netns: nsPath(p1) }, conf)).code).toBe(0);
  // The note says cni0 was checked; now cni0 is a veth (someone's, not podwire's).
  sh('ip', ['-n', node.ns, 'link', 'del', 'cni0']);
  sh('ip', ['-n', node.ns, 'link', 'add', 'cni0', 'type', 'veth', 'peer', 'name', 'cni0p']);
  const before = snapshot(node);
  const add = await cni(node.ns, { command: 'ADD', containerID: 'b', netns: nsPath(p2) }, conf);
  expect(add.json).toMatchObject({ code: 7, msg: expect.stringContaining('bridge: cni0 exists and is not a bridge') });
  expect(snapshot(node)).toBe(before);
  expect(linkNames(p2)).toEqual(['lo']);
});
