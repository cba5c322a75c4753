// `podwire doctor` on a kept lab: each failure class broken one at a time on node1, then doctor must name
// it, the fix it prints (run exactly as printed: an argument vector and its stdin) must repair it, doctor
// must be clean again, and the pods must talk again. Needs root.
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorJson as DoctorReport, FindingJson as Finding } from '../../src/explore/doctor.js';
import { DiskStore } from '../../src/ipam/disk-store.js';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabNode, type LabPod } from '../../src/lab/lab.js';
import { LAB_PREFIX, delNetns, labDown, pingAsync } from '../../src/lab/netns.js';
import { run } from '../../src/runtime/run.js';
import { BIN, requireRoot, sh } from '../helpers/netns.js';

let lab: Lab;
let n1: LabNode;
let n2: LabNode;
let p1: LabPod;
let p2: LabPod;

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 2, 'ipv4', 'iptables'); // its FORWARD findings are iptables'; nftables' below
  [n1, n2] = lab.nodes as [LabNode, LabNode];
  await bringUp(lab);
  p1 = await lab.addPod(n1, 'pod1');
  p2 = await lab.addPod(n2, 'pod1');
}, 60_000);
afterAll(() => labDown());

/**
 * Doctor's report on `node`, in English. Every call also runs it in Chinese, at the same time, and checks
 * the two agree: the same findings, verdicts and fixes, each told in Chinese with the same addresses,
 * devices and names (the tokens with a digit; counts may differ between two reads). So every test here
 * runs on the Chinese too, as a learner following README.zh-CN.md sees it.
 */
async function doctor(node = 'node1'): Promise<{ code: number; report: DoctorReport }> {
  const [en, zh] = await Promise.all([
    run(BIN, ['doctor', '--lab', node, '--json']),
    run(BIN, ['doctor', '--lab', node, '--json', '--lang', 'zh']),
  ]);
  const [e, z] = [JSON.parse(en.stdout) as DoctorReport, JSON.parse(zh.stdout) as DoctorReport];
  expect(zh.code).toBe(en.code);
  const shape = (r: DoctorReport) =>
    // The same ids in every language: --json carries what was found as ids and values, the words beside them.
    r.findings.map((f) => ({
      check: f.check,
      ok: f.ok,
      id: f.id,
      whyId: f.whyId,
      safe: f.safe,
      fix: f.fix?.map((x) => [x.argv, x.input]),
    }));
  expect(shape(z)).toEqual(shape(e));
  const tokens = (text = '') =>
    (text.match(/[\w.:\/\[\]-]*\d[\w.:\/\[\]-]*/g) ?? [])
      .map((x) => x.replace(/[:.]+$/, ''))
      .filter((x) => !/^\d+$/.test(x))
      .sort();
  const han = /[\u4e00-\u9fff]/;
  z.findings.forEach((f, i) => {
    for (const [said, english] of [
      [f.what, e.findings[i]!.what],
      [f.why, e.findings[i]!.why],
      ...(f.fix ?? []).map((x, k) => [x.on, e.findings[i]!.fix![k]!.on]),
    ]) {
      if (english === undefined) continue;
      expect(han.test(said!), said).toBe(true);
      expect(said).not.toMatch(/\{\w+\}/);
      expect(tokens(said), `${said}\n${english}`).toEqual(tokens(english));
    }
  });
  return { code: en.code, report: e };
}
const failing = (r: DoctorReport): Finding[] => r.findings.filter((f) => !f.ok);
const inNode = (n: LabNode, ...args: string[]) => sh('ip', ['netns', 'exec', n.ns, ...args]);

/** Runs a finding's fixes exactly as printed: argument vector, stdin, no shell. */
async function applyFix(f: Finding): Promise<void> {
  expect(f.fix?.length, `${f.check} has a fix`).toBeGreaterThan(0);
  for (const fix of f.fix!) {
    const r = await run(fix.argv[0]!, fix.argv.slice(1), { input: fix.input });
    expect(r.code, `${fix.argv.join(' ')}: ${r.stderr}`).toBe(0);
  }
}

/** Doctor names exactly `checks`; its printed fix of `check` repairs it; doctor is clean again. */
async function diagnoseAndFix(checks: string[], fix = checks[0]!): Promise<Finding> {
  const before = await doctor();
  expect(before.code).toBe(1);
  expect(failing(before.report).map((f) => f.check)).toEqual(checks);
  const finding = failing(before.report).find((f) => f.check === fix)!;
  expect(finding.why).toBeTruthy();
  await applyFix(finding);
  const after = await doctor();
  expect(failing(after.report)).toEqual([]);
  expect(after.code).toBe(0);
  return finding;
}

const podsTalk = async () => (await pingAsync(p1.ns, p2.ip)) && (await pingAsync(p2.ns, p1.ip));

describe('podwire doctor', () => {
  it('finds nothing wrong on a healthy lab node, and says so with exit 0', async () => {
    for (const node of ['node1', 'node2']) {
      const { code, report } = await doctor(node);
      expect(failing(report)).toEqual([]);
      expect(code).toBe(0);
      expect(report.findings.map((f) => f.check)).toEqual(
        expect.arrayContaining([
          'ip-forward',
          'br-netfilter',
          'forward-chain',
          'rp-filter-vxlan',
          'pod-subnet',
          'checksum-offload',
          'udp-checksum-errors',
          'mtu',
          'peers',
          'vxlan-port',
        ]),
      );
    }
    expect(await podsTalk()).toBe(true);
  });

  it('a network the node joined later on top of the pod subnet: named, with why', async () => {
    // A second address on the uplink, inside node1's slice (an operator renumbering the node).
    inNode(n1, 'ip', 'addr', 'add', '10.244.1.200/25', 'dev', 'eth0');
    try {
      const { code, report } = await doctor();
      expect(code).toBe(1);
      const f = failing(report);
      expect(f.map((x) => x.check)).toEqual(['pod-subnet']);
      expect(f[0]!.what).toContain(
        'the pod subnet 10.244.1.0/24 overlaps 10.244.1.128/25, a network the node is on (eth0 has 10.244.1.200/25)',
      );
    } finally {
      inNode(n1, 'ip', 'addr', 'del', '10.244.1.200/25', 'dev', 'eth0');
    }
    expect(failing((await doctor()).report)).toEqual([]);
  });

  it('TX checksum offload turned off on a kernel that has the fix: named with why, and the safe fix turns it back on', async () => {
    inNode(n1, 'ethtool', '-K', 'podwire.1', 'tx-checksum-ip-generic', 'off');
    const f = await diagnoseAndFix(['checksum-offload']);
    expect(f.what).toMatch(/is off for podwire\.1, and should be on: kernel \S+ has the fix \(5\.7 and later\)/);
    expect(f.safe).toBe(true);
    expect(inNode(n1, 'ethtool', '-k', 'podwire.1')).toMatch(/tx-checksum-ip-generic: on/);
    expect(await podsTalk()).toBe(true);
  });

  it('forwarding off', async () => {
    inNode(n1, 'sysctl', '-qw', 'net.ipv4.ip_forward=0');
    expect(await pingAsync(p2.ns, p1.ip)).toBe(false);
    const f = await diagnoseAndFix(['ip-forward']);
    expect(f.safe).toBe(true);
    expect(await podsTalk()).toBe(true);
  });

  it("strict rp_filter on the VXLAN device: a peer's traffic from its Node IP is dropped", async () => {
    inNode(n1, 'sysctl', '-qw', 'net.ipv4.conf.podwire/1.rp_filter=1');
    const fromNodeIP = () => run('ip', ['netns', 'exec', n2.ns, 'busybox', 'ping', '-c', '1', '-W', '1', '-I', n2.nodeIP, p1.ip]);
    expect((await fromNodeIP()).code).not.toBe(0);
    await diagnoseAndFix(['rp-filter-vxlan']);
    expect((await fromNodeIP()).code).toBe(0);
    expect(await podsTalk()).toBe(true);
  });

  it("FORWARD's policy DROP with podwire's chain removed", async () => {
    inNode(n1, 'iptables', '-P', 'FORWARD', 'DROP');
    inNode(n1, 'iptables', '-D', 'FORWARD', '-m', 'comment', '--comment', 'podwire: pod network', '-j', 'PODWIRE-FORWARD');
    inNode(n1, 'iptables', '-F', 'PODWIRE-FORWARD');
    inNode(n1, 'iptables', '-X', 'PODWIRE-FORWARD');
    expect(await pingAsync(p2.ns, p1.ip)).toBe(false);
    const f = await diagnoseAndFix(['forward-chain']);
    expect(f.fix![0]!.argv).toContain('up'); // node up puts the chain back; the policy stays the admin's
    expect(inNode(n1, 'iptables', '-S', 'FORWARD').split('\n')[0]).toBe('-P FORWARD DROP');
    expect(await podsTalk()).toBe(true);
    inNode(n1, 'iptables', '-P', 'FORWARD', 'ACCEPT');
  });

  it("an FDB entry deleted: the peer's pods are unreachable", async () => {
    inNode(n1, 'bridge', 'fdb', 'del', '0e:70:c0:a8:32:0c', 'dev', 'podwire.1', 'dst', n2.nodeIP);
    expect(await pingAsync(p1.ns, p2.ip)).toBe(false);
    // The probe through the overlay fails too: it is named with its own finding.
    await diagnoseAndFix(['peers', 'vxlan-port'], 'peers');
    expect(await podsTalk()).toBe(true);
  });

  it("a pod's MTU above the overlay's: small packets pass, full-size ones vanish", async () => {
    sh('ip', ['-n', p1.ns, 'link', 'set', 'dev', 'eth0', 'mtu', '1500']);
    expect(await pingAsync(p1.ns, p2.ip)).toBe(true);
    expect(await pingAsync(p1.ns, p2.ip, 1472)).toBe(false); // fits the pod's 1500, dropped at the 1450 path
    const f = await diagnoseAndFix(['mtu']);
    expect(f.what).toContain(`eth0 of ${p1.ns}`);
    expect(f.safe).toBe(false); // a live pod is the runtime's: printed, not applied by --fix
    expect(await pingAsync(p1.ns, p2.ip, 1422)).toBe(true); // the largest that fits 1450
    expect(await podsTalk()).toBe(true);
  });

  it('the node subnet file removed: no pod starts (try again later)', async () => {
    sh('rm', [n1.subnetFile]);
    await expect(lab.addPod(n1, 'late')).rejects.toThrow(/exit 1.*does not exist yet/s);
    delNetns(`${LAB_PREFIX}n1-late`); // the pod's namespace, made before the ADD failed
    await diagnoseAndFix(['subnet-file']);
    const late = await lab.addPod(n1, 'late');
    expect(await pingAsync(late.ns, p2.ip)).toBe(true);
    await lab.delPod(late);
  });

  it('a leaked reservation (pod namespace deleted without DEL) is named once it cannot be an ADD in flight', async () => {
    const leak = await lab.addPod(n1, 'leak');
    sh('ip', ['netns', 'del', leak.ns]);
    lab.pods.splice(lab.pods.indexOf(leak), 1);
    expect(failing((await doctor()).report)).toEqual([]); // a moment old: could be an ADD in flight
    const store = DiskStore.forNetwork(join(n1.dir, 'ipam'), n1.list.name);
    const old = new Date(Date.now() - 120_000);
    utimesSync(join(store.dir, leak.ip), old, old);
    const f = await diagnoseAndFix(['leaked-reservation']);
    expect(f.what).toContain(leak.ip);
    expect(f.fix![0]!.input).toContain('"type":"podwire"'); // a DEL, with the network config on stdin
    expect(store.list().has(leak.ip)).toBe(false);
  });

  it('the VXLAN port dropped on the way to a peer: named, with the fix to run on that peer', async () => {
    inNode(n2, 'iptables', '-I', 'INPUT', '-p', 'udp', '--dport', '8472', '-s', n1.nodeIP, '-j', 'DROP');
    try {
      expect(await pingAsync(p1.ns, p2.ip)).toBe(false);
      const f = await diagnoseAndFix(['vxlan-port']);
      expect(f.fix![0]!.argv.slice(0, 4)).toEqual(['ip', 'netns', 'exec', n2.ns]);
      expect(f.fix![0]!.on).toMatch(/^node2/);
      expect(await podsTalk()).toBe(true);
    } finally {
      inNode(n2, 'iptables', '-F', 'INPUT');
    }
  });

  it('UDP checksum errors growing while doctor runs (what a peer offloading on an affected kernel causes): named, with the fix for the peers', async () => {
    // node2 sends node1 UDP datagrams with a wrong checksum, every 20 ms for 4 s, while doctor runs on node1.
    const py = `
import socket, struct, sys, time
src, dst = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
udp = struct.pack('!HHHH', 40000, 9999, 12, 0x1234) + b'bad!'
end = time.time() + 4
while time.time() < end:
    s.sendto(udp, (dst, 0))
    time.sleep(0.02)
`;
    const sender = run('ip', ['netns', 'exec', n2.ns, 'python3', '-c', py, n2.nodeIP, n1.nodeIP]);
    await new Promise((r) => setTimeout(r, 300));
    const { report } = await doctor();
    await sender;
    const f = report.findings.find((x) => x.check === 'udp-checksum-errors')!;
    expect(f).toMatchObject({ ok: false, what: expect.stringMatching(/^UDP checksum errors grew from \d+ to \d+ while doctor ran/) });
    expect(f.fix).toEqual([{ argv: ['ethtool', '-K', 'podwire.1', 'tx-checksum-ip-generic', 'off'], on: 'every peer' }]);
    // Once nothing bad arrives, doctor is clean again.
    expect(failing((await doctor()).report)).toEqual([]);
  });

  it('--fix applies the safe fixes, leaves the others printed, and exits 1 while anything is left', async () => {
    inNode(n1, 'sysctl', '-qw', 'net.ipv4.ip_forward=0');
    inNode(n1, 'bridge', 'fdb', 'del', '0e:70:c0:a8:32:0c', 'dev', 'podwire.1', 'dst', n2.nodeIP);
    sh('ip', ['-n', p1.ns, 'link', 'set', 'dev', 'eth0', 'mtu', '1500']);
    const r = await run(BIN, ['doctor', '--lab', 'node1', '--fix', '--json']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.fixed.map((x: { line: string; ok: boolean }) => x.ok)).not.toContain(false);
    expect(out.fixed.map((x: { line: string }) => x.line)).toEqual([
      `ip netns exec ${n1.ns} sysctl -w net.ipv4.ip_forward=1`,
      `ip netns exec ${n1.ns} ${BIN} peers sync --cluster ${n1.clusterFile} --node node1`,
    ]);
    expect(failing(out).map((f: Finding) => f.check)).toEqual(['mtu']);
    sh('ip', ['-n', p1.ns, 'link', 'set', 'dev', 'eth0', 'mtu', '1450']);
    expect((await doctor()).code).toBe(0);
    expect(await podsTalk()).toBe(true);
  });
});
