// The same forgeries against the reference `bridge` plugin with macspoofchk (its only anti-spoofing,
// opt-in) and against podwire, each on a node namespace of its own with pods A and C: podwire must stop
// at least everything the reference stops (and, the issue says, more). Each forgery comes with an honest
// control sent the same way, which must arrive on both. Needs root, python3, /usr/lib/cni.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, REF_PLUGINS, ROOT, Sandbox, cni, nsPath, requireRoot, sh } from '../helpers/netns.js';
import { until } from '../helpers/wait.js';

const FORGE = join(ROOT, 'test', 'helpers', 'forge.py');
const box = new Sandbox();
afterAll(() => box.cleanup());

interface Setup {
  name: string;
  node: string;
  bridge: string;
  gateway: string;
  a: { ns: string; ip: string };
  c: { ns: string; ip: string };
}

const mac = (ns: string, dev: string) => JSON.parse(sh('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev]))[0].address as string;

async function setUp(name: string, plugin: Record<string, unknown>, bin: string): Promise<Setup> {
  const node = box.ns('n');
  const dir = box.dir();
  const bridge = `${name}br0`;
  const conf = {
    cniVersion: '1.0.0',
    name: `${name}net`,
    ...plugin,
    bridge,
    isGateway: true,
    ipam: { type: plugin.type === 'podwire' ? 'podwire-ipam' : 'host-local', subnet: '10.250.0.0/24', dataDir: join(dir, 'ipam') },
  };
  const add = async (id: string) => {
    const ns = box.ns('p');
    const r = await cni(node, { command: 'ADD', containerID: id, netns: nsPath(ns), ifname: 'eth0' }, conf, bin);
    if (r.code !== 0) throw new Error(`${name} ADD ${id}: ${r.stdout}${r.stderr}`);
    return { ns, ip: (r.json.ips[0].address as string).split('/')[0]! };
  };
  const a = await add(`${name}-a`);
  const c = await add(`${name}-c`);
  return { name, node, bridge, gateway: '10.250.0.1', a, c };
}

/** What C's UDP port 5000 receives while `send` runs: "SRC TEXT" lines. */
async function received(s: Setup, send: () => void): Promise<string[]> {
  const l: ChildProcess = spawn('ip', ['netns', 'exec', s.c.ns, 'python3', FORGE, 'listen', '4', '5000', '1']);
  let out = '';
  l.stdout!.on('data', (d) => (out += d));
  await until(() => out.includes('listening'), 5000);
  send();
  await new Promise((r) => l.on('exit', r));
  return out.split('\n').slice(1).filter(Boolean);
}

/** Each forgery: whether it got through (and its control did), on one setup. */
async function forgeries(s: Setup): Promise<Record<string, boolean>> {
  const forge = (...args: string[]) => sh('ip', ['netns', 'exec', s.a.ns, 'python3', FORGE, ...args]);
  const own = mac(s.a.ns, 'eth0');
  const gwMac = mac(s.node, s.bridge);
  const got = await received(s, () => {
    forge('udp', 'eth0', own, gwMac, s.a.ip, s.c.ip, '5000', 'honest');
    forge('udp', 'eth0', own, mac(s.c.ns, 'eth0'), s.a.ip, s.c.ip, '5000', 'honest-bridged');
    forge('udp', 'eth0', own, mac(s.c.ns, 'eth0'), '10.250.0.77', s.c.ip, '5000', 'forged-source');
    forge('udp', 'eth0', '02:00:00:00:99:99', mac(s.c.ns, 'eth0'), s.a.ip, s.c.ip, '5000', 'forged-mac');
  });
  expect(got, `${s.name}: the controls`).toEqual(expect.arrayContaining([`${s.a.ip} honest`, `${s.a.ip} honest-bridged`]));
  // C knows the gateway; then A claims the gateway's address (past the 1 s locktime).
  sh('ip', ['netns', 'exec', s.c.ns, 'ping', '-c1', '-W1', s.gateway]);
  const gwBefore = JSON.parse(sh('ip', ['-n', s.c.ns, '-j', 'neigh', 'show', s.gateway]))[0]?.lladdr;
  await new Promise((r) => setTimeout(r, 1100));
  forge('arp', 'eth0', own, own, s.gateway, s.gateway);
  const gwAfter = JSON.parse(sh('ip', ['-n', s.c.ns, '-j', 'neigh', 'show', s.gateway]))[0]?.lladdr;
  // A router advertisement: C (a host, forwarding off, accept_ra on as a new namespace has it) would take
  // a route from it.
  const ll = (JSON.parse(sh('ip', ['-n', s.a.ns, '-6', '-j', 'addr', 'show', 'dev', 'eth0', 'scope', 'link']))[0]?.addr_info ?? [])[0]
    ?.local;
  forge('ra', 'eth0', own, ll ?? 'fe80::1', '2001:db8:bad::/64');
  await new Promise((r) => setTimeout(r, 200));
  return {
    'forged source address': got.some((l) => l.endsWith('forged-source')),
    'forged source MAC': got.some((l) => l.endsWith('forged-mac')),
    "ARP claiming the gateway's address": gwAfter !== gwBefore,
    'router advertisement': /2001:db8:bad/.test(sh('ip', ['-n', s.c.ns, '-6', 'route', 'show'])),
  };
}

describe('podwire stops at least every forgery the reference bridge (macspoofchk) stops', () => {
  let ref: Record<string, boolean>;
  let ours: Record<string, boolean>;

  beforeAll(async () => {
    requireRoot();
    const refSetup = await setUp('ref', { type: 'bridge', macspoofchk: true }, join(REF_PLUGINS, 'bridge'));
    const ourSetup = await setUp('pw', { type: 'podwire' }, BIN);
    ref = await forgeries(refSetup);
    ours = await forgeries(ourSetup);
  }, 60_000);

  it('the reference stops a forged MAC only; podwire stops every one of them', () => {
    expect(ref).toEqual({
      'forged source address': true,
      'forged source MAC': false,
      "ARP claiming the gateway's address": true,
      'router advertisement': true,
    });
    expect(Object.values(ours)).toEqual([false, false, false, false]);
    for (const [what, through] of Object.entries(ours)) if (through) expect(ref[what], what).toBe(true);
  });
});
