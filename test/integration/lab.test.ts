// The lab is the main job: run it as `npm run lab` runs it, and check it proves what it says and cleans up.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { labNamespaces } from '../../src/lab/netns.js';
import { BIN, ROOT, requireRoot, sh } from '../helpers/netns.js';
import { CATALOGUES } from '../../src/i18n/index.js';
import { missingLines, readmeOutputs } from '../helpers/readme.js';

beforeAll(requireRoot);

function lab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, ['lab', ...args], (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** "passed/failed" of one proof in the lab's summary table. */
function tally(out: string, proof: string): string {
  const m = new RegExp(`^${proof.replace(/[()]/g, '\\$&')}\\s+(\\d+)\\s+(\\d+)$`, 'm').exec(out);
  return m ? `${m[1]}/${m[2]}` : 'missing';
}

describe('podwire lab (3 nodes, 2 pods each, as npm run lab runs it)', () => {
  // The same checks in Chinese (--lang zh): every step, table and proof is read in the learner's language.
  it.each([
    ['vxlan', 'en'],
    ['host-gw', 'en'],
    ['auto', 'en'],
    ['vxlan', 'zh'],
  ] as const)('--mode %s --lang %s: proves the pod network and removes everything', async (mode, lang) => {
    const r = await lab('--mode', mode, '--nodes', '3', '--pods-per-node', '2', '--lang', lang);
    const P = (proof: string) => CATALOGUES[lang][`proof.${proof}` as keyof typeof CATALOGUES.en] ?? proof;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(CATALOGUES[lang]['lab.ok']);
    if (lang === 'zh') {
      expect(r.stderr).toContain('[2/7] 在每个节点上运行 podwire node up，然后 podwire peers sync');
      expect(r.stdout).toMatch(/^验证项\s+通过\s+失败$/m);
      expect(r.stdout).toMatch(/^Service\s+类型\s+集群 IP:port（虚拟）\s+targetPort = containerPort\s+nodePort（每个节点 IP）/m);
      // What README.zh-CN.md shows of the lab, line by line, is what the learner sees.
      const blocks = readmeOutputs('lab');
      expect(blocks.length).toBeGreaterThan(2);
      for (const b of blocks) expect(missingLines(b, r.stderr + r.stdout)).toEqual([]);
    }
    expect(tally(r.stdout, P('podToPod'))).toBe('30/0'); // 6 pods x 5 others
    expect(tally(r.stdout, P('nodeToRemotePod'))).toBe('6/0');
    expect(tally(r.stdout, P('fullMtu'))).toBe('6/0');
    expect(tally(r.stdout, P('travelsVxlan'))).toBe('3/0');
    // Services through kube-proxy's rules, and a hostPort, each answered by the expected backend.
    expect(tally(r.stdout, P('serviceSameNode'))).toBe('1/0');
    expect(tally(r.stdout, P('serviceOtherNode'))).toBe('1/0');
    expect(tally(r.stdout, P('serviceHairpin'))).toBe('1/0');
    expect(tally(r.stdout, P('nodePortFromOutside'))).toBe('3/0');
    // What the articles claim, shown: externalTrafficPolicy Local against Cluster, no ping to a Cluster IP,
    // and a pod's traffic to the world arriving from its Node IP.
    expect(tally(r.stdout, P('localNodePortSeesClient'))).toBe('1/0');
    expect(tally(r.stdout, P('localNodePortOtherNodeSilent'))).toBe('2/0');
    expect(tally(r.stdout, P('clusterNodePortSeesNode'))).toBe('1/0');
    expect(tally(r.stdout, P('clusterIPNoPing'))).toBe('1/0');
    expect(tally(r.stdout, P('podToOutsideSeesNodeIP'))).toBe('1/0');
    // "Pod IPs are ephemeral; clients use the Service": a backend started again, another Pod IP, same Service.
    expect(tally(r.stdout, P('restartedNewPodIP'))).toBe('1/0');
    expect(tally(r.stdout, P('restartedClusterIP'))).toBe('1/0');
    expect(tally(r.stdout, P('restartedNodePort'))).toBe('1/0');
    expect(tally(r.stdout, P('hostPortFromOutside'))).toBe('1/0');
    expect(tally(r.stdout, P('hostPortFromNode'))).toBe('1/0');
    expect(r.stdout).toMatch(/^web-nodeport\s+NodePort\s+10\.96\.0\.12:80\s+8080\s+30080\s+10\.244\.3\.\d+:8080 \(web@node3\)$/m);
    expect(r.stdout).toMatch(/pod2\s+node3\s+10\.244\.3\.\d+\s+veth[0-9a-f]{8}/);
    const backends = [...r.stdout.matchAll(/^(node\d)\s+(node\d)\s+(vxlan|host-gw)\s/gm)].map((m) => `${m[1]}>${m[2]}:${m[3]}`);
    const expected = {
      vxlan: ['node1>node2:vxlan', 'node1>node3:vxlan', 'node2>node1:vxlan', 'node2>node3:vxlan', 'node3>node1:vxlan', 'node3>node2:vxlan'],
      'host-gw': [
        'node1>node2:host-gw',
        'node1>node3:host-gw',
        'node2>node1:host-gw',
        'node2>node3:host-gw',
        'node3>node1:host-gw',
        'node3>node2:host-gw',
      ],
      // node3 sits behind the lab's router: reached by VXLAN, while node1 and node2 share a subnet.
      auto: [
        'node1>node2:host-gw',
        'node1>node3:vxlan',
        'node2>node1:host-gw',
        'node2>node3:vxlan',
        'node3>node1:vxlan',
        'node3>node2:vxlan',
      ],
    }[mode];
    expect(backends).toEqual(expected);
    expect(r.stdout).toMatch(
      mode === 'host-gw'
        ? /^node1\s+192\.168\.50\.11\s+10\.244\.1\.0\/24\s+-\s+1500$/m
        : /^node1\s+192\.168\.50\.11\s+10\.244\.1\.0\/24\s+0e:70:c0:a8:32:0b\s+1450$/m,
    );
    // One pod's ADD and DEL told step by step (the trace, in the lab's language), with this pod's own names.
    const trace =
      lang === 'en'
        ? /How pod1 on node1 got its network[^]*podwire ADD lab-node1-pod1\/eth0[^]*create the veth pair (veth[0-9a-f]{8}) <-> eth0[^]*attach the host end \1 to cni0[^]*=> ADD ok/
        : /node1 上的 pod1 是怎样获得网络的[^]*podwire ADD lab-node1-pod1\/eth0[^]*创建 veth 对 (veth[0-9a-f]{8}) <-> eth0[^]*把主机端 \1 接到 cni0 上并启用[^]*=> ADD 成功/;
    expect(r.stdout).toMatch(trace);
    expect(r.stdout).toMatch(
      lang === 'en'
        ? /How pod1 on node1 was removed:[^]*podwire DEL lab-node1-pod1\/eth0[^]*release the Pod IP 10\.244\.1\.2[^]*=> DEL ok/
        : /node1 上的 pod1 是怎样被删除的：[^]*podwire DEL lab-node1-pod1\/eth0[^]*把 Pod IP 10\.244\.1\.2 释放回节点的地址片[^]*=> DEL 成功/,
    );
    expect(r.stderr).toContain(CATALOGUES[lang]['lab.allDeleted']);
    expect(labNamespaces()).toEqual([]);
    expect(existsSync('/run/podwire-lab')).toBe(false);
  });

  it('--keep leaves it up for exploring, --diagram draws it, --json reports it, and lab-down removes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'podwire-lab-'));
    try {
      const r = await lab('--nodes', '2', '--pods-per-node', '1', '--keep', '--json', '--diagram', join(dir, 'lab.svg'));
      expect(r.code, r.stderr).toBe(0);
      // --json: the tables' rows, keyed, in one document (and nothing else on stdout)
      const report = JSON.parse(r.stdout);
      expect(report).toMatchObject({ mode: 'vxlan', ok: true, failed: [] });
      expect(report.nodes).toEqual([
        { node: 'node1', nodeIP: '192.168.50.11', podCIDR: '10.244.1.0/24', vtepMac: '0e:70:c0:a8:32:0b', podMtu: 1450 },
        { node: 'node2', nodeIP: '192.168.50.12', podCIDR: '10.244.2.0/24', vtepMac: expect.stringMatching(/^0e:70:/), podMtu: 1450 },
      ]);
      expect(report.peers.map((p: any) => `${p.node}>${p.peer}:${p.backend}`)).toEqual(['node1>node2:vxlan', 'node2>node1:vxlan']);
      expect(report.pods).toContainEqual({
        pod: 'pod1',
        node: 'node2',
        podIP: expect.stringMatching(/^10\.244\.2\./),
        veth: expect.any(String),
        ifname: 'eth0',
      });
      expect(report.proofs.find((p: any) => p.proof === 'podToPod')).toEqual({ proof: 'podToPod', family: 4, passed: 2, failed: 0 });
      expect(report.services.map((s: any) => s.service)).toContain('web-nodeport');
      // TX checksum offload is on (this kernel has the fix), and Service traffic that kube-proxy's rules SNAT
      // with --random-fully crossed the VXLAN overlay with it on: the proofs passed, the MASQUERADE rule counted it.
      const inLab = (n: string, ...a: string[]) => sh('ip', ['netns', 'exec', `pwlab-${n}`, ...a]);
      for (const n of ['node1', 'node2']) expect(inLab(n, 'ethtool', '-k', 'podwire.1')).toMatch(/tx-checksum-ip-generic: on/);
      const masq = ['node1', 'node2'].map((n) =>
        Number(
          /^\s*(\d+)\s+\d+\s+MASQUERADE.*random-fully/m.exec(
            inLab(n, 'iptables', '-t', 'nat', '-L', 'KUBE-POSTROUTING', '-v', '-n', '-x'),
          )?.[1] ?? 0,
        ),
      );
      expect(masq[0]! + masq[1]!).toBeGreaterThan(0);
      for (const proof of ['serviceOtherNode', 'nodePortFromOutside'])
        expect(report.proofs.find((p: any) => p.proof === proof)).toMatchObject({ failed: 0, passed: expect.any(Number) });
      expect(report.traceAdd).toMatch(/podwire ADD lab-node1-pod1\/eth0/);
      // The picture has every node and pod of the lab (the explore test renders one in Chromium).
      const svg = readFileSync(join(dir, 'lab.svg'), 'utf8');
      const drawn = (kind: string) => [...svg.matchAll(new RegExp(`data-kind="${kind}" data-name="([^"]+)"`, 'g'))].map((m) => m[1]).sort();
      expect(drawn('node')).toEqual(['node1', 'node2']);
      expect(drawn('pod')).toEqual(['n1-client', 'n1-pod1', 'n1-web', 'n2-pod1', 'n2-web']);
      expect(labNamespaces().sort()).toEqual([
        'pwlab-n1-client',
        'pwlab-n1-pod1',
        'pwlab-n1-web',
        'pwlab-n2-pod1',
        'pwlab-n2-web',
        'pwlab-node1',
        'pwlab-node2',
        'pwlab-outside',
        'pwlab-underlay',
      ]);
      expect(sh('ip', ['netns', 'pids', 'pwlab-n2-web']).trim()).not.toBe(''); // its web server still serves
    } finally {
      sh(BIN, ['lab-down']);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(labNamespaces()).toEqual([]);
    // lab-down also ends the web servers the lab started in its pods.
    expect(spawnSync('pgrep', ['-f', '/run/podwire-lab/node.*/www-web']).status).toBe(1);
  });
});

describe('podwire lab --family ipv6 and dual, every backend', () => {
  // A proof's id, and its family as the tables name it: '' for IPv4, ' (IPv6)'.
  const proof = (report: any, key: string) => {
    const [id, family] = key.endsWith(' (IPv6)') ? [key.slice(0, -' (IPv6)'.length), 6] : [key, 4];
    const p = report.proofs.find((x: any) => x.proof === id && x.family === family);
    return p ? `${p.passed}/${p.failed}` : 'missing';
  };
  it.each([
    ['ipv6', 'vxlan'],
    ['ipv6', 'host-gw'],
    ['ipv6', 'auto'],
    ['dual', 'vxlan'],
    ['dual', 'host-gw'],
    ['dual', 'auto'],
  ])('--family %s --mode %s: every proof in every family, nothing left', async (family, mode) => {
    const r = await lab('--family', family, '--mode', mode, '--nodes', '3', '--pods-per-node', '2', '--json', '--no-trace');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(true);
    expect(report.failed).toEqual([]);
    const families = family === 'dual' ? ['', ' (IPv6)'] : [' (IPv6)'];
    if (family === 'dual') expect(proof(report, 'podToPod')).toBe('30/0');
    else expect(proof(report, 'podToPod')).toBe('missing'); // IPv6 only: no IPv4 anywhere
    for (const f of families) {
      expect(proof(report, `podToPod${f}`)).toBe('30/0');
      expect(proof(report, `nodeToRemotePod${f}`)).toBe('6/0');
      expect(proof(report, `fullMtu${f}`)).toBe('6/0');
      expect(proof(report, `travelsVxlan${f}`)).toBe('3/0');
      expect(proof(report, `serviceOtherNode${f}`)).toBe('1/0');
      expect(proof(report, `nodePortFromOutside${f}`)).toBe('3/0');
      expect(proof(report, `hostPortFromOutside${f}`)).toBe('1/0');
    }
    // Both addresses of every node and pod; the pod MTU fits IPv6's 70 bytes of VXLAN headers.
    expect(report.nodes[0]).toMatchObject({
      node: 'node1',
      nodeIP: family === 'dual' ? '192.168.50.11, fd00:50::11' : 'fd00:50::11',
      podCIDR: family === 'dual' ? '10.244.1.0/24, fd00:10:244:1::/64' : 'fd00:10:244:1::/64',
      podMtu: mode === 'host-gw' ? 1500 : 1430,
    });
    expect(report.pods.find((p: any) => p.pod === 'pod1' && p.node === 'node2').podIP).toMatch(
      family === 'dual' ? /^10\.244\.2\.\d+, fd00:10:244:2::\d+$/ : /^fd00:10:244:2::\d+$/,
    );
    // auto decides per family: node3 (behind the router in both families) by VXLAN, the others directly.
    const modes = report.peers.filter((p: any) => p.node === 'node1').map((p: any) => `${p.peer}/${p.family}:${p.backend}`);
    const want = (peer: string) => (mode === 'auto' ? (peer === 'node3' ? 'vxlan' : 'host-gw') : mode);
    const fams = family === 'dual' ? ['IPv4', 'IPv6'] : ['IPv6'];
    expect(modes.sort()).toEqual(fams.flatMap((f) => ['node2', 'node3'].map((p) => `${p}/${f}:${want(p)}`)).sort());
    expect(labNamespaces()).toEqual([]);
  });

  // kube-proxy in nftables mode (GA since Kubernetes 1.33), with podwire's rules in nftables and in
  // iptables: every Service, nodePort and hostPort proof, in every family.
  it.each([
    ['ipv4', 'nftables'],
    ['ipv6', 'iptables'],
    ['dual', 'nftables'],
    ['dual', 'iptables'],
  ])('--proxy nftables --family %s --firewall %s: every Service, nodePort and hostPort proof passes', async (family, firewall) => {
    const r = await lab(
      '--proxy',
      'nftables',
      '--firewall',
      firewall,
      '--family',
      family,
      '--mode',
      'vxlan',
      '--nodes',
      '2',
      '--json',
      '--no-trace',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("kube-proxy's nftables rules (table ip kube-proxy");
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(true);
    expect(report.failed).toEqual([]);
    const families = family === 'dual' ? ['', ' (IPv6)'] : family === 'ipv6' ? [' (IPv6)'] : [''];
    for (const f of families) {
      for (const group of [
        'serviceSameNode',
        'serviceOtherNode',
        'serviceHairpin',
        'localNodePortSeesClient',
        'clusterNodePortSeesNode',
        'restartedNodePort',
      ])
        expect(proof(report, `${group}${f}`), `${group}${f}`).toBe('1/0');
      expect(proof(report, `nodePortFromOutside${f}`)).toBe('2/0');
      expect(proof(report, `hostPortFromOutside${f}`)).toBe('1/0');
    }
    expect(labNamespaces()).toEqual([]);
  });

  it('--policy FILE: the policies enforced on x, y, z × a, b, c, and the reachability tables printed', async () => {
    const r = await lab('--policy', join(ROOT, 'deploy', 'netpol-example.json'), '--nodes', '3', '--json', '--no-trace');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    const row = (table: string, from: string) =>
      table
        .split('\n')
        .find((l) => l.startsWith(from))!
        .split(/\s+/)
        .filter(Boolean)
        .slice(1);
    // x/a takes TCP 80 from namespace y only: the first column is "." for y's rows and itself, "X" for the rest.
    const t80 = report.policy80tcp as string;
    expect(row(t80, 'x/b')[0]).toBe('X');
    expect(row(t80, 'y/a')[0]).toBe('.');
    expect(row(t80, 'z/c')[0]).toBe('X');
    expect(row(t80, 'x/a')[0]).toBe('.');
    expect(row(report.policy81tcp, 'y/a')[0]).toBe('X'); // port 81 is not allowed
    expect(
      row(t80, 'x/b')
        .slice(1)
        .every((c) => c === '.'),
    ).toBe(true); // nothing else is isolated
    expect(labNamespaces()).toEqual([]);
  });
});
