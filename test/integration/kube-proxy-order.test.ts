// podwire's FORWARD accept sits behind kube-proxy's filter rules, so kube-proxy's verdicts on pod traffic
// hold: a Service without endpoints is rejected at once, a conntrack-INVALID packet is dropped
// (kubernetes#74839), and pod traffic still flows. On a 2-node lab where kube-proxy's rules are there
// before podwire sets the node up (kubeadm's order: kube-proxy runs before the CNI is applied). Then the
// old order (podwire's jump first) is put back by hand to show what it breaks, and `node up` mends it.
// Needs root; everything happens in the lab's namespaces.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabNode, type LabPod, PLANS } from '../../src/lab/lab.js';
import { labDown, pingAsync } from '../../src/lab/netns.js';
import { kubeProxyFilterRules } from '../../src/lab/services.js';
import { BIN, requireRoot, sh } from '../helpers/netns.js';

let lab: Lab;
let n1: LabNode;
let n2: LabNode;
let a: LabPod;
let b: LabPod;
const NO_ENDPOINTS = { name: 'default/empty:http', ip: '10.96.0.99', port: 80 };

const inNs = (ns: string, ...args: string[]) => sh('ip', ['netns', 'exec', ns, ...args]);
const forward = (n: LabNode) =>
  inNs(n.ns, 'iptables', '-S', 'FORWARD')
    .split('\n')
    .filter((l) => l.startsWith('-A FORWARD'))
    .map((l) => /-j (\S+)$/.exec(l)?.[1]);
/** Packets counted by KUBE-FORWARD's INVALID drop on a node. */
const invalidDropped = (n: LabNode) =>
  Number(/^\s*(\d+)\s+\d+\s+DROP.*ctstate INVALID/m.exec(inNs(n.ns, 'iptables', '-L', 'KUBE-FORWARD', '-v', '-n', '-x'))?.[1] ?? NaN);

/** A TCP connect to the Service without endpoints from pod a: what nc says and how long it took. */
function connectNoEndpoints(): { said: string; ms: number } {
  const t0 = performance.now();
  const r = spawnSync(
    'ip',
    ['netns', 'exec', a.ns, 'busybox', 'timeout', '4', 'busybox', 'nc', NO_ENDPOINTS.ip, String(NO_ENDPOINTS.port)],
    {
      encoding: 'utf8',
      input: '',
    },
  );
  return { said: `${r.stdout}${r.stderr}`, ms: performance.now() - t0 };
}

/** Five TCP segments with SYN and FIN both set (conntrack calls them INVALID) from pod a to pod b, port 9. */
function sendInvalid(): void {
  const py = `
import socket, struct, sys
src, dst = sys.argv[1], sys.argv[2]
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
tcp = struct.pack('!HHIIBBHHH', 40000, 9, 1, 0, 5 << 4, 0x03, 65535, 0, 0)
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for _ in range(5): s.sendto(tcp, (dst, 0))
`;
  inNs(a.ns, 'python3', '-c', py, a.ip, b.ip);
}
/** What reached pod b on port 9 (a counting rule in its raw table). */
const arrived = () =>
  Number(
    /^\s*(\d+)\s/m.exec(inNs(b.ns, 'iptables', '-t', 'raw', '-L', 'PREROUTING', '-v', '-n', '-x').split('\n').slice(2).join('\n'))?.[1] ??
      NaN,
  );

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 2, 'ipv4', 'iptables'); // FORWARD's iptables chain is what this tests
  [n1, n2] = lab.nodes as [LabNode, LabNode];
  // kube-proxy first, as on a kubeadm node, and a default route, as every real node has (to the outside host).
  for (const n of lab.nodes) {
    sh('ip', ['netns', 'exec', n.ns, 'iptables-restore', '--noflush', '--wait'], kubeProxyFilterRules([NO_ENDPOINTS]).join('\n'));
    sh('ip', ['-n', n.ns, 'route', 'add', 'default', 'via', PLANS[4].outside]);
  }
  await bringUp(lab);
  a = await lab.addPod(n1, 'a');
  b = await lab.addPod(n2, 'b');
  inNs(b.ns, 'iptables', '-t', 'raw', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '9');
}, 60_000);
afterAll(() => labDown());

it("podwire's accept comes after kube-proxy's rules, and each of kube-proxy's verdicts holds", async () => {
  for (const n of lab.nodes) expect(forward(n)).toEqual(['KUBE-PROXY-FIREWALL', 'KUBE-FORWARD', 'KUBE-SERVICES', 'PODWIRE-FORWARD']);
  // A Service without endpoints: refused at once, not left to time out.
  const c = connectNoEndpoints();
  expect(c.said).toMatch(/Connection refused/);
  expect(c.ms).toBeLessThan(1500);
  // A conntrack-INVALID packet: dropped on the first node, never reaching the other pod.
  const dropped = invalidDropped(n1);
  sendInvalid();
  await new Promise((r) => setTimeout(r, 300));
  expect(invalidDropped(n1)).toBe(dropped + 5);
  expect(arrived()).toBe(0);
  // Pod traffic still flows.
  expect(await pingAsync(a.ns, b.ip)).toBe(true);
});

it('with the old order (podwire first) those verdicts are lost; node up puts its rule back in its place', async () => {
  for (const n of lab.nodes) {
    inNs(n.ns, 'iptables', '-D', 'FORWARD', '-m', 'comment', '--comment', 'podwire: pod network', '-j', 'PODWIRE-FORWARD');
    inNs(n.ns, 'iptables', '-I', 'FORWARD', '1', '-m', 'comment', '--comment', 'podwire: pod network', '-j', 'PODWIRE-FORWARD');
  }
  expect(connectNoEndpoints().said).not.toMatch(/Connection refused/); // sent on to the default gateway instead
  const dropped = invalidDropped(n1);
  sendInvalid();
  await new Promise((r) => setTimeout(r, 300));
  expect(invalidDropped(n1)).toBe(dropped);
  expect(arrived()).toBe(5);

  for (const n of lab.nodes) {
    expect(await lab.nodeUp(n)).toContain('iptables filter PODWIRE-FORWARD written');
    expect(forward(n)).toEqual(['KUBE-PROXY-FIREWALL', 'KUBE-FORWARD', 'KUBE-SERVICES', 'PODWIRE-FORWARD']);
    expect(await lab.nodeUp(n)).toEqual([]); // and stays: a second node up changes nothing
  }
  expect(connectNoEndpoints().said).toMatch(/Connection refused/);
  expect(await pingAsync(a.ns, b.ip)).toBe(true);
});
