// A pod is only itself (issue: forged source, MAC, ARP, ND, RA): an attacker in pod A on node1 sends raw
// frames (test/helpers/forge.py, AF_PACKET: what CAP_NET_RAW allows any pod) — as B, as a host off the
// cluster, with B's MAC, claiming the gateway's or B's address — to C on its node and to D across the
// VXLAN, IPv4 and IPv6; each forgery beside an honest control sent the same way that must arrive. A
// dual-stack two-node lab in namespaces this test makes; nothing leaves them. Needs root and python3.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabNode, type LabPod } from '../../src/lab/lab.js';
import { labDown } from '../../src/lab/netns.js';
import { BIN, ROOT, requireRoot, sh } from '../helpers/netns.js';
import { until } from '../helpers/wait.js';

const FORGE = join(ROOT, 'test', 'helpers', 'forge.py');
let lab: Lab;
let n1: LabNode;
let n2: LabNode;
let A: LabPod, B: LabPod, C: LabPod, D: LabPod;

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 2, 'dual');
  await bringUp(lab);
  [n1, n2] = lab.nodes as [LabNode, LabNode];
  A = await lab.addPod(n1, 'a');
  B = await lab.addPod(n1, 'b');
  C = await lab.addPod(n1, 'c');
  D = await lab.addPod(n2, 'd');
}, 120_000);
afterAll(() => labDown());

const forge = (p: LabPod, ...args: string[]) => sh('ip', ['netns', 'exec', p.ns, 'python3', FORGE, ...args]);
const macOf = (ns: string, dev: string): string => JSON.parse(sh('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev]))[0].address;
const ipOf = (p: LabPod, f: 4 | 6) => p.ips.find((x) => (f === 6) === x.includes(':'))!;
/** The node's neighbour entry for an address on its bridge: the MAC it would send to. */
const neighMac = (ns: string, ip: string, dev = 'cni0'): string | undefined =>
  (JSON.parse(sh('ip', ['-n', ns, '-j', 'neigh', 'show', 'to', ip, 'dev', dev]) || '[]') as { lladdr?: string }[])[0]?.lladdr;

const guardCounters = () => sh('ip', ['netns', 'exec', n1.ns, 'nft', 'list', 'counters', 'table', 'bridge', 'podwire-guard']);

/** What `to` receives on UDP port 5000 while `send` runs: "SRC TEXT" lines. */
async function received(to: LabPod, f: 4 | 6, send: () => void): Promise<string[]> {
  const l: ChildProcess = spawn('ip', ['netns', 'exec', to.ns, 'python3', FORGE, 'listen', String(f), '5000', '1.5']);
  let out = '';
  l.stdout!.on('data', (d) => (out += d));
  await new Promise<void>((r) => {
    const t = setInterval(() => out.includes('listening') && (clearInterval(t), r()), 10);
  });
  send();
  await new Promise((r) => l.on('exit', r));
  return out
    .split('\n')
    .slice(1)
    .filter((x) => x.trim());
}

describe.each([4, 6] as const)('IPv%s: a pod sends only from its own address and MAC', (f) => {
  const gwMac = () => macOf(n1.ns, 'cni0');
  const udp = (srcMac: string, src: string, to: LabPod, text: string) =>
    forge(A, 'udp', 'eth0', srcMac, gwMac(), src, ipOf(to, f), '5000', text);
  const offCluster = f === 4 ? '198.51.100.7' : '2001:db8::7';

  for (const [where, to] of [
    ['on its node', () => C],
    ['across nodes by VXLAN', () => D],
  ] as const) {
    it(`to a pod ${where}: its own source arrives; B's, and a host's off the cluster, do not`, async () => {
      const got = await received(to(), f, () => {
        udp(macOf(A.ns, 'eth0'), ipOf(A, f), to(), 'honest');
        udp(macOf(A.ns, 'eth0'), ipOf(B, f), to(), 'as-b');
        udp(macOf(A.ns, 'eth0'), offCluster, to(), 'as-outsider');
      });
      expect(got).toEqual([`${ipOf(A, f)} honest`]);
    });
  }

  it("a frame with B's MAC is dropped, and the bridge keeps B's MAC on B's port", async () => {
    const got = await received(C, f, () => {
      udp(macOf(A.ns, 'eth0'), ipOf(A, f), C, 'honest');
      udp(macOf(B.ns, 'eth0'), ipOf(A, f), C, 'with-b-mac');
    });
    expect(got).toEqual([`${ipOf(A, f)} honest`]);
    const fdb = JSON.parse(sh('bridge', ['-n', n1.ns, '-j', 'fdb', 'show', 'br', 'cni0'])) as { mac: string; ifname: string }[];
    expect(fdb.filter((e) => e.mac === macOf(B.ns, 'eth0')).map((e) => e.ifname)).not.toContain(A.veth);
  });
});

describe.each([4, 6] as const)('IPv%s: only the cluster nodes reach the VXLAN port', (f) => {
  const nodeIP = (n: LabNode) => n.nets.find((x) => x.family === f)!.nodeIP;
  const vtepMac = (n: LabNode) => macOf(n.ns, f === 4 ? 'podwire.1' : 'podwire-v6.1');
  /** A VXLAN packet from `ns`, by a plain UDP socket, to `n`'s VTEP: inside, UDP from `src` to `to`. */
  const vxlan = (ns: string, n: LabNode, src: string, to: LabPod, text: string) =>
    sh('ip', ['netns', 'exec', ns, 'python3', FORGE, 'vxlan', nodeIP(n), '8472', '1', vtepMac(n), src, ipOf(to, f), '5000', text]);

  it("to its own node: a peer node's arrives; a pod's and an outside host's do not", async () => {
    const got = await received(C, f, () => {
      vxlan(n2.ns, n1, ipOf(D, f), C, 'from-node2');
      vxlan(A.ns, n1, ipOf(D, f), C, 'from-pod');
      vxlan(lab.outside, n1, ipOf(D, f), C, 'from-outside');
    });
    expect(got).toEqual([`${ipOf(D, f)} from-node2`]);
  });

  it('to another node, masqueraded on the way: a node sending it arrives; a pod does not', async () => {
    const got = await received(D, f, () => {
      vxlan(n1.ns, n2, ipOf(B, f), D, 'from-node1');
      vxlan(A.ns, n2, ipOf(B, f), D, 'from-pod');
    });
    expect(got).toEqual([`${ipOf(B, f)} from-node1`]);
  });
});

describe('a reused IP is reachable before its pod sends anything of its own', () => {
  it.each([4, 6] as const)("IPv%s: a pod given a deleted pod's address answers the node at once", async (f) => {
    const x = await lab.addPod(n1, 'x');
    const ip = ipOf(x, f);
    const ping = () => {
      try {
        sh('ip', ['netns', 'exec', n1.ns, 'ping', `-${f}`, '-c1', '-W1', ip]);
        return true;
      } catch {
        return false;
      }
    };
    expect(ping()).toBe(true);
    const oldMac = macOf(x.ns, 'eth0');
    await lab.delPod(x);
    const y = await lab.addPod(n1, 'y', undefined, false, `IP=${x.ips.join(',')}`);
    try {
      expect(macOf(y.ns, 'eth0')).not.toBe(oldMac);
      expect(ping()).toBe(true);
      expect(neighMac(n1.ns, ip)).toBe(macOf(y.ns, 'eth0'));
    } finally {
      await lab.delPod(y);
    }
  });

  it.each([4] as const)("IPv%s: the node's stale entry (a DEL killed before it forgot the address) is corrected by the ADD", async (f) => {
    const x = await lab.addPod(n1, `x2${f}`);
    const ip = ipOf(x, f);
    await lab.delPod(x);
    sh('ip', ['-n', n1.ns, 'neigh', 'replace', ip, 'lladdr', '02:00:00:00:00:42', 'dev', 'cni0', 'nud', 'stale']);
    // As old as such an entry is: past the kernel's locktime (1 s), within which an entry takes no new MAC.
    await new Promise((r) => setTimeout(r, 1100));
    const y = await lab.addPod(n1, `y2${f}`, undefined, false, `IP=${x.ips.join(',')}`);
    try {
      await until(() => neighMac(n1.ns, ip) === macOf(y.ns, 'eth0'), 1000, 'the node to learn the new MAC');
      sh('ip', ['netns', 'exec', n1.ns, 'ping', `-${f}`, '-c1', '-W1', ip]);
      // Set from inside the pod's namespace by ADD: no router advertisement taken.
      expect(sh('ip', ['netns', 'exec', y.ns, 'sysctl', '-n', 'net.ipv6.conf.eth0.accept_ra']).trim()).toBe('0');
    } finally {
      await lab.delPod(y);
    }
  });
});

describe('a pod cannot claim an address that is not its own', () => {
  it('after changing its own MAC, nothing it sends arrives; back to its own, it does', async () => {
    const own = macOf(A.ns, 'eth0');
    const gw = ipOf(A, 4).replace(/\.\d+$/, '.1');
    sh('ip', ['-n', A.ns, 'link', 'set', 'eth0', 'address', '02:aa:bb:cc:dd:ee']);
    sh('ip', ['-n', A.ns, 'neigh', 'flush', 'dev', 'eth0']);
    const ping = (to: string) => {
      try {
        sh('ip', ['netns', 'exec', A.ns, 'ping', '-c1', '-W1', to]);
        return true;
      } catch {
        return false;
      }
    };
    try {
      expect(ping(gw)).toBe(false);
      expect(ping(ipOf(C, 4))).toBe(false);
    } finally {
      sh('ip', ['-n', A.ns, 'link', 'set', 'eth0', 'address', own]);
    }
    expect(ping(ipOf(C, 4))).toBe(true);
  });

  it("gratuitous ARP claiming B's address or the gateway's changes no neighbour entry of the node or of C", async () => {
    const gw = ipOf(A, 4).replace(/\.\d+$/, '.1');
    sh('ip', ['netns', 'exec', C.ns, 'ping', '-c1', '-W1', gw]);
    sh('ip', ['netns', 'exec', n1.ns, 'ping', '-c1', '-W1', ipOf(B, 4)]);
    const before = { node: neighMac(n1.ns, ipOf(B, 4)), c: neighMac(C.ns, gw, 'eth0') };
    expect(before.node).toBe(macOf(B.ns, 'eth0'));
    // Past the kernel's locktime (1 s), when an unprotected neighbour takes a new MAC from any ARP reply.
    await new Promise((r) => setTimeout(r, 1200));
    const a = macOf(A.ns, 'eth0');
    forge(A, 'arp', 'eth0', a, a, ipOf(B, 4), ipOf(B, 4));
    forge(A, 'arp', 'eth0', a, a, gw, gw);
    expect({ node: neighMac(n1.ns, ipOf(B, 4)), c: neighMac(C.ns, gw, 'eth0') }).toEqual(before);
    // The honest control, sent the same way: an announcement of its own address is not dropped.
    const arpDrops = () => Number(/counter drop-arp \{\s+packets (\d+)/.exec(guardCounters())![1]);
    const dropsBefore = arpDrops();
    forge(A, 'arp', 'eth0', a, a, ipOf(A, 4), ipOf(A, 4));
    expect(arpDrops()).toBe(dropsBefore);
  });

  it("a neighbour advertisement for B's IPv6 address changes nothing; a router advertisement installs no route in C", () => {
    const b6 = ipOf(B, 6);
    sh('ip', ['netns', 'exec', n1.ns, 'ping', '-6', '-c1', '-W1', b6]);
    const before = neighMac(n1.ns, b6);
    expect(before).toBe(macOf(B.ns, 'eth0'));
    const a = macOf(A.ns, 'eth0');
    forge(A, 'na', 'eth0', a, ipOf(A, 6), b6, a);
    forge(A, 'ra', 'eth0', a, ipOf(A, 6), '2001:db8:bad::/64');
    expect(neighMac(n1.ns, b6)).toBe(before);
    const routes = sh('ip', ['-n', C.ns, '-6', 'route', 'show']);
    expect(routes).not.toMatch(/proto ra/);
    expect(routes).not.toContain('2001:db8:bad');
  });

  it('the drops are counted by check', () => {
    const counters = guardCounters();
    for (const c of ['mac', 'arp', 'ip4', 'ip6', 'ra', 'na'])
      expect(counters, c).toMatch(new RegExp(`counter drop-${c} \\{\\s+packets [1-9]`));
  });

  it('DEL leaves no element of the pod in the table', async () => {
    const e = await lab.addPod(n1, 'e');
    const has = () => sh('ip', ['netns', 'exec', n1.ns, 'nft', 'list', 'table', 'bridge', 'podwire-guard']).includes(e.veth);
    expect(has()).toBe(true);
    await lab.delPod(e);
    expect(has()).toBe(false);
  });
});

describe('the binding written straight to the kernel (one nf_tables batch over netlink, no nft)', () => {
  const SETS = ['set ports', 'map portids', 'set macs', 'set ips4', 'set ips6', 'set nd6', 'set ok4', 'set ok6'];
  const list = (x: string) => {
    const [kind, name] = x.split(' ') as [string, string];
    return sh('ip', ['netns', 'exec', n1.ns, 'nft', 'list', kind, 'bridge', 'podwire-guard', name]);
  };
  const sets = () => SETS.map(list).join('');

  it('holds exactly what nft writes for it: nft adding the same elements again changes nothing; DEL removes them all', async () => {
    const e = await lab.addPod(n1, 'f', { portMappings: [] }, true);
    expect(e.trace).toContain('one nf_tables batch over netlink');
    const before = sets();
    // Every set has the pod's element(s): its port, id, MAC, both families' addresses, link-local included.
    for (const x of SETS) expect(list(x), x).toContain(e.veth);
    const { bindLines } = await import('../../src/guard/table.js');
    const same = bindLines([{ port: e.veth, mac: macOf(e.ns, 'eth0'), ips: e.ips }]);
    sh('ip', ['netns', 'exec', n1.ns, 'nft', '-f', '-'], same.join('\n') + '\n');
    expect(sets()).toBe(before);
    const trace = await lab.delPod(e, true);
    expect(sets()).not.toContain(e.veth);
    expect(trace).toContain(`binding to its port ${e.veth}`);
  });
});

describe('every drop seen: podwire drops', () => {
  /** `podwire drops` in node1's namespace (no agent there: it reads the log group itself) while `send` runs. */
  async function drops(args: string[], send: () => void): Promise<string> {
    const p = spawn('ip', ['netns', 'exec', n1.ns, BIN, 'drops', '--seconds', '3', ...args]);
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (err += d));
    await until(() => err.includes('7461'), 5000);
    await new Promise((r) => setTimeout(r, 300)); // ulogd bound to the group
    send();
    const code = await new Promise((r) => p.on('exit', r));
    expect(code, err).toBe(0);
    return out;
  }

  it('names the pod on the port, whatever address it forged, the check and the packet; VXLAN from outside too', async () => {
    const a = macOf(A.ns, 'eth0');
    const out = await drops(['--json'], () => {
      forge(A, 'udp', 'eth0', a, macOf(n1.ns, 'cni0'), ipOf(B, 4), ipOf(C, 4), '5000', 'as-b');
      sh('ip', [
        'netns',
        'exec',
        lab.outside,
        'python3',
        FORGE,
        'vxlan',
        n1.nodeIP,
        '8472',
        '1',
        macOf(n1.ns, 'podwire.1'),
        ipOf(D, 4),
        ipOf(C, 4),
        '5000',
        'x',
      ]);
    });
    const seen = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(seen).toContainEqual(
      expect.objectContaining({ reason: 'ip4', port: A.veth, src: ipOf(B, 4), dst: ipOf(C, 4), proto: 'udp', dport: 5000, own: A.ips }),
    );
    expect(seen).toContainEqual(expect.objectContaining({ reason: 'vxlan', src: '192.168.50.250', proto: 'udp', dport: 8472 }));
    // An honest packet is no drop.
    expect(seen.filter((d) => d.port === A.veth && d.src === ipOf(A, 4))).toEqual([]);
  });

  it('a reader killed outright (SIGKILL) leaves no ulogd behind holding the group', async () => {
    const ulogds = () =>
      sh('ip', ['netns', 'pids', n1.ns])
        .split('\n')
        .filter((pid) => {
          try {
            return pid && /ulogd/.test(sh('cat', [`/proc/${pid}/comm`]));
          } catch {
            return false; // gone meanwhile
          }
        });
    const p = spawn('ip', ['netns', 'exec', n1.ns, BIN, 'drops', '--seconds', '30']);
    let err = '';
    p.stderr!.on('data', (d) => (err += d));
    await until(() => err.includes('7461') && ulogds().length === 1, 5000, 'ulogd to start');
    p.kill('SIGKILL');
    await until(() => ulogds().length === 0, 3000, 'ulogd to end with its reader');
  });

  it("in the learner's language: Chinese with --lang zh", async () => {
    const a = macOf(A.ns, 'eth0');
    const out = await drops(['--lang', 'zh'], () =>
      forge(A, 'udp', 'eth0', a, macOf(n1.ns, 'cni0'), ipOf(B, 6), ipOf(C, 6), '5000', 'as-b'),
    );
    expect(out).toContain(`丢弃 UDP [${ipOf(B, 6)}]:40000 → [${ipOf(C, 6)}]:5000：${A.veth} 上的 Pod 以 ${ipOf(B, 6)} 为源地址发出`);
  });
});

describe('explained: path shows the spoofing checks as a hop', () => {
  const path = (...args: string[]) => spawnSync(BIN, ['path', ...args, '--lab', '--proto', 'udp'], { encoding: 'utf8' });

  it.each([4, 6] as const)("IPv%s: an honest packet passes A's port; one forged as B is dropped there, and said so", (f) => {
    const honest = path(ipOf(A, f), ipOf(D, f));
    expect(honest.stdout).toContain(`spoofing checks on ${A.veth}`);
    expect(honest.stdout).toContain(`${ipOf(A, f)} is this pod's own address`);
    expect(honest.status).toBe(0);
    const forged = path(ipOf(A, f), ipOf(D, f), '--spoof', ipOf(B, f));
    expect(forged.stdout).toContain(`dropped by the spoofing checks on ${A.veth}: ${ipOf(B, f)} is not this pod's address`);
    expect(forged.status).toBe(1);
  });
});

describe('explained: status shows each binding, doctor finds a missing or a left-over one', () => {
  const cli = (...args: string[]) =>
    spawnSync(BIN, [...args, '--lab', 'node1', '--json', ...(args[0] === 'doctor' ? ['--no-probe'] : [])], { encoding: 'utf8' });
  const guard = (script: string) => sh('ip', ['netns', 'exec', n1.ns, 'nft', '-f', '-'], script);
  const bindingOfA = () => ({ port: A.veth, mac: macOf(A.ns, 'eth0'), ips: A.ips });
  const GONE = { port: 'veth0badf00d', mac: '02:00:00:00:0b:ad', ips: ['10.244.1.250'] };

  it('status: the checks on, and each pod bound', () => {
    const st = JSON.parse(cli('status').stdout);
    expect(st.spoofChecks).toMatchObject({ on: true, table: true, stale: [] });
    expect(st.spoofChecks.bound).toBe(3); // A, B, C
    for (const ip of A.ips) expect(st.pods.find((p: { ip: string }) => p.ip === ip)).toMatchObject({ bound: true, ok: true });
  });

  it("a pod's binding removed: status and doctor say it is unchecked; a binding left for a gone port: doctor --fix removes it", async () => {
    const { bindLines, unbindLines } = await import('../../src/guard/table.js');
    guard(unbindLines([bindingOfA()]).join('\n') + '\n');
    guard(bindLines([GONE]).join('\n') + '\n');
    try {
      const st = JSON.parse(cli('status').stdout);
      expect(st.pods.find((p: { ip: string }) => p.ip === ipOf(A, 4))).toMatchObject({ bound: false, ok: false });
      expect(st.spoofChecks.stale).toEqual([GONE]);
      const dr = JSON.parse(cli('doctor').stdout) as { findings: { check: string; ok: boolean; what: string; safe?: boolean }[] };
      const finding = (check: string) => dr.findings.filter((f) => f.check === check && !f.ok);
      expect(
        finding('spoof-binding')
          .map((f) => f.what)
          .join('\n'),
      ).toContain(A.veth);
      expect(finding('stale-binding')).toHaveLength(1);
      expect(finding('stale-binding')[0]!.safe).toBe(true);
      spawnSync(BIN, ['doctor', '--lab', 'node1', '--fix', '--no-probe'], { encoding: 'utf8' });
      expect(JSON.parse(cli('status').stdout).spoofChecks.stale).toEqual([]);
    } finally {
      guard(bindLines([bindingOfA()]).join('\n') + '\n');
    }
    expect(JSON.parse(cli('status').stdout).pods.find((p: { ip: string }) => p.ip === ipOf(A, 4)).bound).toBe(true);
  });
});
