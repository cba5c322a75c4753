import { spawnSync } from 'node:child_process';
// status, path and diagram against a live lab (3 nodes, auto mode: node1-node2 host-gw, node3 behind a
// router by VXLAN; Services with kube-proxy's rules). What they say is checked against the kernel and
// against real traffic, including after the state is broken on purpose. The diagram is rendered in
// headless Chromium. Everything lives in pwlab-* namespaces, removed in afterAll.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabPod } from '../../src/lab/lab.js';
import { httpGet, labDown, pingAsync } from '../../src/lab/netns.js';
import { HOST_PORT, OUTSIDE_PORT, type ServiceLab, addServices } from '../../src/lab/services.js';
import { BIN, ROOT, requireRoot, sh } from '../helpers/netns.js';
import { renderSvg } from '../helpers/chromium.js';
import { missingLines, readmeOutputs } from '../helpers/readme.js';

let lab: Lab;
let svc: ServiceLab;
const pod = (node: string, name: string): LabPod => lab.pods.find((p) => p.node.name === node && p.name === name)!;
const tmp = mkdtempSync(join(tmpdir(), 'podwire-explore-'));

function podwire(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}
const json = async (...args: string[]) => {
  const r = await podwire(...args, '--json');
  return { code: r.code, out: JSON.parse(r.stdout), stderr: r.stderr };
};
/** The tokens with a digit (addresses, ports, MACs, device names), which a translation must keep; ephemeral
 * client ports may differ between two reads of conntrack. */
const tokens = (text: string) =>
  (text.match(/[\w.:\/\[\]>-]*\d[\w.:\/\[\]>-]*/g) ?? [])
    .map((x) => x.replace(/[:.]+$/, '').replace(/:(3[2-9]|[4-6]\d)\d{3}\b/g, ':EPHEMERAL'))
    .sort();
const han = /[\u4e00-\u9fff]/;

/**
 * `status` in Chinese says what the English says: the same exit code, the same problems and drift (each in
 * Chinese, with the same addresses and names), and its text the same lines with the same figures.
 */
async function statusAgreesInChinese(...args: string[]): Promise<void> {
  const [e, z, et, zt] = await Promise.all([
    json('status', ...args),
    json('status', ...args, '--lang', 'zh'),
    podwire('status', ...args),
    podwire('status', ...args, '--lang', 'zh'),
  ]);
  expect(z.code).toBe(e.code);
  const said = (o: any): string[] => [
    ...o.problems,
    ...o.pods.map((p: any) => p.problem ?? ''),
    ...(o.peers ?? []).flatMap((p: any) => p.drift),
  ];
  const [se, sz] = [said(e.out), said(z.out)];
  expect(sz.length).toBe(se.length);
  sz.forEach((x, i) => {
    if (!se[i]) return expect(x).toBe('');
    expect(han.test(x), x).toBe(true);
    expect(tokens(x), `${x}\n${se[i]}`).toEqual(tokens(se[i]!));
  });
  const [le, lz] = [et.stdout.trimEnd().split('\n'), zt.stdout.trimEnd().split('\n')];
  expect(lz.map(tokens)).toEqual(le.map(tokens));
  expect(lz.filter((l) => /[a-z]{3}/i.test(l) && !han.test(l)).length).toBeLessThan(lz.length / 2);
}

const fdbDel = (from: string, mac: string, dst: string) =>
  sh('ip', ['netns', 'exec', `pwlab-${from}`, 'bridge', 'fdb', 'del', mac, 'dev', 'podwire.1', 'dst', dst]);

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'auto', 3);
  await bringUp(lab);
  for (const n of lab.nodes) await lab.addPod(n, 'pod1');
  svc = await addServices(lab);
}, 60_000);

afterAll(() => {
  labDown();
  rmSync(tmp, { recursive: true, force: true });
});

describe('podwire status', () => {
  it('shows the slice, devices, every Pod IP with its veth and namespace, and the peers in sync', async () => {
    const { code, out } = await json('status', '--lab', 'node1');
    expect(code).toBe(0);
    const mine = lab.pods.filter((p) => p.node.name === 'node1');
    expect(out.node).toMatchObject({ name: 'node1', nodeIPs: ['192.168.50.11'], podCIDRs: ['10.244.1.0/24'], backend: 'auto' });
    expect(out.slices).toEqual([
      expect.objectContaining({
        cidr: '10.244.1.0/24',
        gateway: '10.244.1.1',
        size: 253,
        used: mine.length,
        free: 253 - mine.length,
      }),
    ]);
    expect(out.bridge).toMatchObject({ name: 'cni0', exists: true, up: true, addresses: ['10.244.1.1/24'], ports: mine.length });
    expect(out.vxlans).toEqual([expect.objectContaining({ name: 'podwire.1', exists: true, vni: 1, local: '192.168.50.11', port: 8472 })]);
    expect(out.pods.map((p: any) => [p.ip, p.containerID, p.hostVeth, p.netns, p.ok])).toEqual(
      mine.sort((a, b) => a.ip.localeCompare(b.ip, 'en', { numeric: true })).map((p) => [p.ip, p.containerID, p.veth, p.ns, true]),
    );
    expect(out.peers.map((p: any) => [p.name, p.mode, p.route, p.neighbour, p.fdb, p.drift])).toEqual([
      ['node2', 'host-gw', 'via 192.168.50.12 dev eth0', undefined, [], []],
      [
        'node3',
        'vxlan',
        'via 10.244.3.0 dev podwire.1 onlink',
        '10.244.3.0 -> 0e:70:c0:a8:3c:0d',
        ['0e:70:c0:a8:3c:0d -> 192.168.60.13'],
        [],
      ],
    ]);
    expect(out.problems).toEqual([]);
    const text = await podwire('status', '--lab', 'node1');
    expect(text.stdout).toMatch(/^slice\s+10\.244\.1\.0\/24: \d+ of 253 Pod IPs reserved/m);
    expect(text.stdout).toMatch(
      new RegExp(
        `^${pod('node1', 'pod1').ip.replace(/\./g, '\\.')}\\s+lab-node1-pod1\\s+eth0\\s+veth[0-9a-f]{8}\\s+yes\\s+pwlab-n1-pod1\\s+-\\s+yes\\s+ok$`,
        'm',
      ),
    );
    expect(text.stdout).toContain('no problems found');
    // node3's web pod publishes a hostPort: status reads it from the node's table (nftables, the lab's auto).
    const three = await json('status', '--lab', 'node3');
    const web = three.out.pods.find((p: any) => p.containerID === 'lab-node3-web');
    expect(web).toMatchObject({ hostPorts: ['8081/tcp -> 8080'], firewall: 'nftables' });
    expect((await podwire('status', '--lab', 'node3')).stdout).toMatch(/lab-node3-web .*8081\/tcp -> 8080 \(nftables\)/);
    for (const n of ['node1', 'node3']) await statusAgreesInChinese('--lab', n);
  });

  it('flags a leaked reservation and drift, exits 1, and is clean again after DEL and peers sync', async () => {
    const leak = await lab.addPod(lab.node('node1'), 'leak');
    sh('ip', ['netns', 'del', leak.ns]); // the pod's namespace goes, no DEL comes
    fdbDel('node1', '0e:70:c0:a8:3c:0d', '192.168.60.13');
    const { code, out } = await json('status', '--lab', 'node1');
    expect(code).toBe(1);
    const row = out.pods.find((p: any) => p.ip === leak.ip);
    expect(row).toMatchObject({ containerID: leak.containerID, vethExists: false, ok: false });
    expect(row.problem).toMatch(/^LEAKED/);
    expect(out.peers.find((p: any) => p.name === 'node3').drift).toEqual(['FDB entry 0e:70:c0:a8:3c:0d -> 192.168.60.13 missing']);
    // The leak and the drift. The leaked pod's binding is not a problem of its own: its reservation's DEL
    // removes it too.
    expect(out.problems).toHaveLength(2);
    expect(out.spoofChecks.stale).toEqual([]);
    await statusAgreesInChinese('--lab', 'node1');

    await lab.delPod(leak); // DEL with the namespace gone: releases the address
    await lab.sync(lab.node('node1'));
    const again = await json('status', '--lab', 'node1');
    expect(again.out.problems).toEqual([]);
    expect(again.code).toBe(0);
  });

  it('without a cluster file, lists podwire routes from the kernel; a bad --conflist is a clear error', async () => {
    const f = lab.node('node2');
    const r = await podwire('status', '--conflist', f.conflistFile); // from the host: no such bridge here
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/bridge\s+cni0: MISSING/);
    const inNode = await new Promise<string>((resolve) =>
      execFile('ip', ['netns', 'exec', f.ns, BIN, 'status', '--conflist', f.conflistFile, '--json'], (_e, stdout) => resolve(stdout)),
    );
    const st = JSON.parse(inNode);
    expect(st.node).toBeUndefined();
    expect(st.peers.map((p: any) => [p.podCIDR, p.mode, p.nodeIP])).toEqual([
      ['10.244.1.0/24', 'host-gw', '192.168.50.11'],
      ['10.244.3.0/24', 'vxlan', '192.168.60.13'],
    ]);
    const bad = await podwire('status', '--conflist', '/nonexistent.conflist');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/nonexistent\.conflist/);
  });
});

describe('podwire path', () => {
  it('pod to pod over VXLAN through the router: every hop, and it agrees with real traffic when the FDB breaks', async () => {
    const [a, b] = [pod('node1', 'pod1'), pod('node3', 'pod1')];
    const { code, out } = await json('path', a.ip, b.ip);
    expect(code).toBe(0);
    expect(out.srcKind).toBe('Pod IP of n1-pod1 on node1');
    expect(out.dstKind).toBe('Pod IP of n3-pod1 on node3');
    const seq = out.hops.map((h: any) => `${h.depth}:${h.ns}`);
    expect([...new Set(seq)]).toEqual([
      '0:pwlab-n1-pod1',
      '0:pwlab-node1',
      '1:pwlab-node1',
      '1:pwlab-underlay',
      '1:pwlab-router',
      '1:pwlab-node3',
      '0:pwlab-node3',
      '0:pwlab-n3-pod1',
    ]);
    const text = out.hops.map((h: any) => h.text).join('\n');
    expect(text).toContain(
      `eth0 is one end of a veth pair: the frame comes out of the other end, ${a.veth} in node1, a port of the bridge cni0`,
    );
    expect(text).toContain("via 10.244.3.0 dev podwire.1 - podwire's route to 10.244.3.0/24, another node's podCIDR (vxlan");
    expect(text).toContain('FDB: 0e:70:c0:a8:3c:0d -> dst 192.168.60.13 (Node IP of node3)');
    expect(text).toContain(`cni0 switches the frame to its port ${b.veth}`);
    expect(out.delivered).toBe(true);
    expect(await pingAsync(a.ns, b.ip)).toBe(true);

    fdbDel('node1', '0e:70:c0:a8:3c:0d', '192.168.60.13');
    try {
      const broken = await json('path', a.ip, b.ip);
      expect(broken.code).toBe(1);
      expect(broken.out.delivered).toBe(false);
      expect(broken.out.hops.at(-1).text).toMatch(/^no FDB entry on podwire\.1 for 0e:70:c0:a8:3c:0d/);
      expect(await pingAsync(a.ns, b.ip)).toBe(false);
    } finally {
      await lab.sync(lab.node('node1'));
    }
    expect((await json('path', a.ip, b.ip)).out.delivered).toBe(true);
  });

  it('pod to pod by host-gw: the route to the peer Node IP and the underlay switch', async () => {
    const { out } = await json('path', pod('node1', 'pod1').ip, pod('node2', 'pod1').ip);
    const text = out.hops.map((h: any) => h.text).join('\n');
    expect(text).toContain("via 192.168.50.12 dev eth0 - podwire's route to 10.244.2.0/24, another node's podCIDR (host-gw");
    expect(text).toContain('ul0 switches the frame to its port node2');
    expect(out.hops.some((h: any) => h.depth > 0)).toBe(false); // no encapsulation
    expect(out.delivered).toBe(true);
  });

  it("a Cluster IP is DNATed on the client pod's node to the Pod IP that really answers", async () => {
    const other = svc.services[1]!;
    const { out } = await json('path', svc.client.ip, `${other.clusterIP}:${other.port}`);
    expect(out.dstKind).toMatch(/^Cluster IP/);
    const dnat = out.hops.find((h: any) => h.text.startsWith('DNAT'));
    expect(dnat.ns).toBe(svc.client.node.ns);
    expect(dnat.text).toMatch(
      new RegExp(
        `^DNAT \\(nat PREROUTING > KUBE-SERVICES > KUBE-SVC-\\w+ > KUBE-SEP-\\w+\\): 10\\.96\\.0\\.11:80 -> ${other.backend.ip}:8080 ` +
          `\\(Pod IP of n3-web on node3\\); Service lab/web-other-node:http: port 80 of Cluster IP 10\\.96\\.0\\.11 -> targetPort 8080$`,
      ),
    );
    expect(out).toMatchObject({ delivered: true, finalDst: other.backend.ip, finalPort: 8080 });
    // The backend the path names is the one that answers.
    expect(await httpGet(svc.client.ns, other.clusterIP, other.port)).toContain('hello from web on node3');
    // And back: the conntrack entry that request left on the client's node turns the reply's source back
    // into the Cluster IP (read from the live table: the request above has just gone that way).
    const back = (await json('path', svc.client.ip, `${other.clusterIP}:${other.port}`)).out.reply;
    const ct = back.find((h: any) => h.text.startsWith('conntrack'));
    expect(ct.ns).toBe(svc.client.node.ns);
    expect(ct.text).toMatch(
      new RegExp(
        `^conntrack \\(live entry, \\w+\\): ${svc.client.ip.replace(/\./g, '\\.')}:\\d+ -> 10\\.96\\.0\\.11:80 was answered by ` +
          `${other.backend.ip.replace(/\./g, '\\.')}:8080: the reply's source ${other.backend.ip.replace(/\./g, '\\.')}:8080 is rewritten back to 10\\.96\\.0\\.11:80 \\(reverse DNAT\\)$`,
      ),
    );
    expect(back.at(-1).text).toBe('the client sees the reply come from 10.96.0.11:80, the address it asked');
  });

  it('ping to a Cluster IP: no DNAT for ICMP, no route, and the answer says why', async () => {
    const r = await json('path', svc.client.ip, svc.services[0]!.clusterIP, '--proto', 'icmp');
    expect(r.code).toBe(1);
    expect(r.out.hops.some((h: any) => h.text.startsWith('DNAT'))).toBe(false);
    expect(r.out.end).toMatch(/Cluster IP is on no interface: only TCP\/UDP to one of its Service ports/);
  });

  it('nodePort and hostPort from the outside host land on the backend pod', async () => {
    const np = await json('path', '192.168.50.250', '192.168.50.12:30080');
    expect(np.out.srcKind).toBe('address of outside (eth0)');
    expect(np.out.dstKind).toBe('Node IP of node2');
    expect(np.out.hops.find((h: any) => h.text.startsWith('DNAT')).text).toMatch(
      /KUBE-NODEPORTS > KUBE-EXT-\w+ > KUBE-SVC-\w+ > KUBE-SEP-\w+\): 192\.168\.50\.12:30080 -> 10\.244\.3\.\d+:8080/,
    );
    expect(np.out.end).toMatch(/in n3-web, Pod IP of n3-web on node3$/);
    // Where no traffic has gone that way yet (a new client port), the way back is predicted, and says so;
    // after a request, the live entry shows the masquerade undone as well: the outside host's own address.
    await httpGet('pwlab-outside', '192.168.50.12', 30080);
    const live = (await json('path', '192.168.50.250', '192.168.50.12:30080')).out.reply.find((h: any) => h.text.startsWith('conntrack'));
    expect(live.text).toMatch(/reverse DNAT\), and its destination [\d.]+:\d+ back to 192\.168\.50\.250:\d+ \(reverse SNAT/);
    const hp = await json('path', '192.168.50.250', `192.168.60.13:${HOST_PORT}`);
    expect(hp.out.hops.find((h: any) => h.text.startsWith('DNAT')).text).toMatch(
      /nftables inet podwire hostports > @hostports4, element of \S+\/eth0\): 192\.168\.60\.13:8081 -> 10\.244\.3\.\d+:8080/,
    );
    expect(hp.out.delivered).toBe(true);
    // Before any traffic, the hostPort's way back is predicted, and marked so; after a request, it is read.
    const ct = (h: any) => /^(conntrack|predicted)/.test(h.text);
    const hpPath = async () => (await json('path', '192.168.50.250', `192.168.60.13:${HOST_PORT}`)).out.reply.find(ct).text;
    expect(await hpPath()).toMatch(
      /^predicted \(no live conntrack entry here yet: send the traffic first\): the reply's source 10\.244\.3\.\d+:8080 is rewritten back to 192\.168\.60\.13:8081/,
    );
    expect(await httpGet('pwlab-outside', '192.168.60.13', HOST_PORT)).toContain('hello from web on node3');
    expect(await hpPath()).toMatch(
      /^conntrack \(live entry, \w+\): 192\.168\.50\.250:\d+ -> 192\.168\.60\.13:8081 was answered by 10\.244\.3\.\d+:8080/,
    );
  });

  it('a pod to the outside host: masqueraded to its Node IP on the way out, and the masquerade undone on the way back', async () => {
    const p = pod('node1', 'pod1');
    const to = `192.168.50.250:${OUTSIDE_PORT}`;
    const { out } = await json('path', p.ip, to);
    expect(out.delivered).toBe(true);
    const masq = out.hops.find((h: any) => h.text.startsWith('masquerade'));
    expect(masq.ns).toBe('pwlab-node1');
    expect(masq.text).toMatch(
      new RegExp(
        `^masquerade \\(nftables inet podwire node-postrouting\\): the source ${p.ip.replace(/\./g, '\\.')} becomes 192\\.168\\.50\\.11, the address it leaves eth0 with \\(Node IP of node1\\)`,
      ),
    );
    expect(out.reply[0].text).toBe(`the reply leaves ${to} for 192.168.50.11`);
    // Once the pod has sent that way, the way back is read from node1's conntrack table.
    expect(await httpGet(p.ns, '192.168.50.250', OUTSIDE_PORT)).toContain('hello from outside');
    const back = (await json('path', p.ip, to)).out.reply;
    expect(back[1]).toMatchObject({ ns: 'pwlab-node1' });
    expect(back[1].text).toMatch(
      new RegExp(
        `^conntrack \\(live entry, \\w+\\): ${p.ip.replace(/\./g, '\\.')}:\\d+ -> ${to} went out as 192\\.168\\.50\\.11:\\d+: .*\\(reverse SNAT: the masquerade undone\\)$`,
      ),
    );
    expect(back.at(-1).text).toBe(`the client sees the reply come from ${to}, the address it asked`);
    // README.zh-CN.md shows this path, both ways: each of its lines is in what the learner sees.
    const [block] = readmeOutputs('path');
    expect(missingLines(block!, (await podwire('path', p.ip, to, '--lang', 'zh')).stdout)).toEqual([]);
    // Pod to pod: no masquerade anywhere.
    expect((await json('path', p.ip, pod('node3', 'pod1').ip)).out.hops.some((h: any) => /masquerade|SNAT/.test(h.text))).toBe(false);
  });

  it('in Chinese, every path above has the same hops, both ways, with the same addresses, ports and devices', async () => {
    // What the English tests above check, for the Chinese: hop by hop the same namespaces and the same
    // addresses, ports, MACs and device names (the tokens with a digit), told in Chinese, every placeholder filled.
    const [n1, n2, n3] = [pod('node1', 'pod1'), pod('node2', 'pod1'), pod('node3', 'pod1')];
    const other = svc.services[1]!;
    const cases = [
      [n1.ip, n3.ip],
      [n1.ip, n2.ip],
      [svc.client.ip, `${other.clusterIP}:${other.port}`],
      [svc.client.ip, svc.services[0]!.clusterIP, '--proto', 'icmp'],
      ['192.168.50.250', '192.168.50.12:30080'],
      ['192.168.50.250', `192.168.60.13:${HOST_PORT}`],
      [n1.ip, `192.168.50.250:${OUTSIDE_PORT}`],
    ];
    for (const c of cases) {
      const [en, zh] = [await json('path', ...c), await json('path', ...c, '--lang', 'zh')];
      expect(zh.code, c.join(' ')).toBe(en.code);
      expect(zh.out.delivered).toBe(en.out.delivered);
      for (const part of ['hops', 'reply'] as const) {
        const [e, z] = [en.out[part] as any[], zh.out[part] as any[]];
        expect(
          z.map((h) => `${h.depth}:${h.ns}`),
          `${c.join(' ')} ${part}`,
        ).toEqual(e.map((h) => `${h.depth}:${h.ns}`));
        z.forEach((h, i) => {
          expect(han.test(h.text), h.text).toBe(true);
          expect(h.text).not.toMatch(/\{\w+\}/);
          expect(tokens(h.text), `${h.text}\n${e[i].text}`).toEqual(tokens(e[i].text));
        });
      }
      for (const k of ['srcKind', 'dstKind', 'end']) expect(han.test(zh.out[k]), zh.out[k]).toBe(true);
    }
  });

  it('--lang zh (or a zh locale): path, status and doctor frame their answers in Chinese', async () => {
    const pods = (await json('status', '--lab', 'node1')).out.pods;
    const [a, b] = pods as { ip: string }[];
    const p = await podwire('path', '--lang', 'zh', a!.ip, b!.ip);
    expect(p.stdout).toMatch(/^从 10\.244\.1\.\d+：node1 上 n1-\w+ 的 Pod IP$/m);
    expect(p.stdout).toMatch(/^已送达 n1-\w+ 中的 10\.244\.1\.\d+/m);
    expect(p.stdout).toMatch(/^返回的路径：$/m);
    const viaLocale = spawnSync(BIN, ['path', a!.ip, b!.ip], { encoding: 'utf8', env: { ...process.env, LANG: 'zh_CN.UTF-8' } });
    expect(viaLocale.stdout).toContain('已送达');
    const st = (await podwire('status', '--lab', 'node1', '--lang', 'zh')).stdout;
    expect(st).toMatch(/Pod IP\s+容器 ID\s+ifname/);
    expect(st).toMatch(/^网段    10\.244\.1\.0\/24：已预留 \d+ \/ 253 个 Pod IP/m);
    expect(st).toMatch(/^节点 node1：节点 IP 192\.168\.50\.11/m);
    const svg = (await podwire('diagram', '--lang', 'zh')).stdout;
    expect(svg).toContain('底层网络：节点所在的网络（节点 IP）');
    expect(svg).toMatch(/节点 IP 192\.168\.50\.11/);
    expect((await podwire('doctor', '--lab', 'node1', '--no-probe', '--lang', 'zh')).stdout).toMatch(
      /node1：没有发现问题|node1 上有 \d+ 个问题/,
    );
  });

  it('refuses what is not an address here', async () => {
    const r = await podwire('path', '10.9.9.9', '10.244.1.2');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/10\.9\.9\.9 is not an address of any namespace here \(the lab\)/);
    expect((await podwire('path', 'node1', '10.244.1.2')).stderr).toMatch(/"node1" is not an address/);
    expect((await podwire('path', '10.9.9.9', '10.244.1.2', '--lang', 'zh')).stderr).toMatch(
      /10\.9\.9\.9 不是这里任何命名空间的地址（实验环境）/,
    );
  });
});

describe('podwire diagram', () => {
  it('draws every node and pod from live state, and Chromium shows each of them', async () => {
    const file = join(tmp, 'lab.svg');
    const r = await podwire('diagram', '-o', file);
    expect(r.code, r.stderr).toBe(0);
    const svg = readFileSync(file, 'utf8');
    const shown = renderSvg(svg, process.env.PODWIRE_DIAGRAM_PNG);
    const visible = (kind: string) =>
      (shown[kind] ?? []).filter((s) => s.inside && s.onTop && s.width > 50 && s.height > 20 && s.textWidths.every((w) => w > 0));
    expect(
      visible('node')
        .map((n) => n.name)
        .sort(),
    ).toEqual(lab.nodes.map((n) => n.name));
    for (const n of lab.nodes) expect(visible('node').find((s) => s.name === n.name)!.text).toContain(`Node IP ${n.nodeIP}/24`);
    expect(
      visible('pod')
        .map((p) => p.name)
        .sort(),
    ).toEqual(lab.pods.map((p) => p.ns.slice('pwlab-'.length)).sort());
    for (const p of lab.pods) {
      const s = visible('pod').find((x) => x.name === p.ns.slice('pwlab-'.length))!;
      expect(s.text).toContain(`eth0 ${p.ip}/24`);
      expect(s.text).toContain(p.veth);
    }
    const links = (shown.link ?? []).filter((l) => l.inside && l.textWidths.every((w) => w > 0));
    expect(links.map((l) => l.name).sort()).toEqual(['host-gw', 'vxlan', 'vxlan']);
    // The Service network below the pods: each Cluster IP:port with its backend's Pod IP:targetPort.
    for (const v of svc.services) {
      const s = visible('service').find((x) => x.name === `lab/${v.name}:http`);
      expect(s?.text, v.name).toContain(`${v.clusterIP}:${v.port} → ${v.backend.ip}:${v.targetPort}`);
    }
    expect(links.find((l) => l.name === 'host-gw')!.text).toContain('10.244.2.0/24 via 192.168.50.12');
  }, 90_000);
});

describe('on a node, outside the lab (--no-lab)', () => {
  it("status, path and diagram see the node's own namespace and its pods in /run/netns", () => {
    // A private network and mount namespace play a node: nothing of the host's is touched, and both go
    // away with the process.
    const dir = mkdtempSync(join(tmpdir(), 'podwire-node-'));
    try {
      const raw = sh('unshare', ['-m', '-n', process.execPath, join(ROOT, 'test', 'helpers', 'private-node.mjs'), BIN, dir]);
      const r = JSON.parse(raw);
      const st = JSON.parse(r.status.out);
      expect(st.pods.map((p: any) => [p.ip, p.containerID, p.netns, p.ok])).toEqual([
        ['10.77.1.2', 'ctr-pod-a', 'pod-a', true],
        ['10.77.1.3', 'ctr-pod-b', 'pod-b', true],
      ]);
      const path = JSON.parse(r.path.out);
      expect(path).toMatchObject({ srcKind: 'Pod IP of pod-a on this node', dstKind: 'Pod IP of pod-b on this node', delivered: true });
      // pod-a's route, its veth, the spoofing checks on its port, the node's route, the bridge to pod-b.
      expect(path.hops.map((h: any) => h.ns)).toEqual(['pod-a', 'pod-a', '', '', '', 'pod-b']);
      const shown = renderSvg(r.svg);
      expect(shown.node!.filter((n) => n.onTop && n.inside).map((n) => n.name)).toEqual(['this node']);
      expect(shown.pod!.filter((p) => p.onTop && p.inside).map((p) => p.name)).toEqual(['pod-a', 'pod-b']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
