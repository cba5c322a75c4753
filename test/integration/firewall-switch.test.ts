// A node's firewall backend changed while pods run (the agent restarted with another --firewall, or the
// cluster file's "firewall"): node up moves every pod's hostPort and masquerade rules to the new backend,
// so the hostPort keeps answering, and leaves nothing of the old one. And a node with no iptables binary
// at all works with the default, auto.
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabNode, type LabPod } from '../../src/lab/lab.js';
import { httpGet, labDown } from '../../src/lab/netns.js';
import { serve } from '../../src/lab/services.js';
import { execCni, pluginConf } from '../../src/lab/runtime.js';
import { run } from '../../src/runtime/run.js';
import { PER_POD, hostPortTo, iptablesNat, nftTable } from '../helpers/firewall.js';
import { BIN, requireRoot, sh } from '../helpers/netns.js';

let lab: Lab;
let n1: LabNode;
const MAPPINGS = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }];

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 1, 'ipv4', 'iptables');
  await bringUp(lab);
  n1 = lab.nodes[0]!;
}, 60_000);

afterAll(() => labDown());

async function switchTo(fw: 'nftables' | 'iptables'): Promise<string[]> {
  lab.cluster.firewall = fw;
  lab.writeCluster();
  return lab.nodeUp(n1);
}

describe('switching the firewall backend on a running node', () => {
  let web: LabPod;

  it('iptables -> nftables: the running pod keeps its hostPort, now a map element; no podwire chain is left in iptables', async () => {
    web = await lab.addPod(n1, 'web', { portMappings: MAPPINGS });
    serve(web, 80);
    await new Promise((r) => setTimeout(r, 300));
    expect(iptablesNat(n1.ns)).toMatch(PER_POD);
    expect(await httpGet(lab.outside, n1.nodeIP, 8080)).toContain('hello from web');

    const changes = await switchTo('nftables');
    expect(changes).toContain('1 pod address(es) moved from iptables to nftables');
    expect(hostPortTo(nftTable(n1.ns), 8080, web.ip, 80)).toBe(true);
    expect(sh('ip', ['netns', 'exec', n1.ns, 'iptables-save'])).not.toMatch(/PODWIRE|PW-(HP|MASQ)-/);
    expect(await httpGet(lab.outside, n1.nodeIP, 8080)).toContain('hello from web');
    // Running node up again changes nothing.
    expect(await lab.nodeUp(n1)).toEqual([]);
  });

  it('nftables -> iptables: the same, the other way; the table is gone', async () => {
    const changes = await switchTo('iptables');
    expect(changes).toContain('1 pod address(es) moved from nftables to iptables');
    expect(hostPortTo(iptablesNat(n1.ns), 8080, web.ip, 80)).toBe(true);
    expect(nftTable(n1.ns)).toBe('');
    expect(await httpGet(lab.outside, n1.nodeIP, 8080)).toContain('hello from web');
  });

  it("the moved pod's DEL removes its rules from the backend they are in now", async () => {
    await switchTo('nftables');
    await lab.delPod(web);
    expect(nftTable(n1.ns)).not.toMatch(PER_POD);
    expect(iptablesNat(n1.ns)).not.toMatch(PER_POD);
    expect(await httpGet(lab.outside, n1.nodeIP, 8080)).toBe('');
  });
});

describe('node down with a pod still running', () => {
  it("removes the node's chains, keeps the pod's hostPort elements for its DEL, and node up puts the chains back", async () => {
    await switchTo('nftables');
    const pod = await lab.addPod(n1, 'keep', { portMappings: MAPPINGS });
    try {
      const down = await lab.nodeDown(n1);
      expect(down.join('\n')).toMatch(/node-forward, node-postrouting, node-output removed \(1 pod address\(es\) keep their elements\)/);
      const t = nftTable(n1.ns);
      expect(t).not.toContain('chain node-forward');
      expect(t).not.toContain('chain node-output');
      expect(hostPortTo(t, 8080, pod.ip, 80)).toBe(true);
      await lab.delPod(pod);
      expect(nftTable(n1.ns)).not.toMatch(PER_POD);
    } finally {
      await lab.nodeUp(n1);
    }
    expect(nftTable(n1.ns)).toContain('chain node-forward');
  });
});

describe('a node without any iptables binary', () => {
  it('auto picks nftables; node up and a hostPort pod work; DEL leaves nothing', async () => {
    // A PATH with every tool podwire may run except iptables*.
    const bin = mkdtempSync(join(tmpdir(), 'pw-noipt-'));
    try {
      for (const t of ['ip', 'bridge', 'nft', 'ethtool', 'sysctl', 'modprobe', 'nsenter']) {
        const at = sh('sh', ['-c', `command -v ${t} || true`]).trim();
        if (at) symlinkSync(at, join(bin, t));
      }
      const env = { PATH: bin };
      await switchTo('iptables'); // start from the other backend: auto must move away from it without iptables to read
      lab.cluster.firewall = 'auto';
      lab.writeCluster();
      const up = await run('ip', [
        'netns',
        'exec',
        n1.ns,
        'env',
        `PATH=${bin}`,
        BIN,
        'node',
        'up',
        '--json',
        '--cluster',
        n1.clusterFile,
        '--node',
        n1.name,
        '--subnet-file',
        n1.subnetFile,
      ]);
      expect(up.code, up.stderr).toBe(0);
      expect(JSON.parse(up.stdout).notes.join('\n')).toMatch(/firewall nftables: auto: nft is installed and iptables is not/);
      const ns = sh('sh', ['-c', 'ip netns add pwlab-noipt-pod && echo /run/netns/pwlab-noipt-pod']).trim();
      try {
        const conf = pluginConf(n1.list, 0, { portMappings: MAPPINGS });
        const add = await execCni(n1.runner, BIN, 'ADD', { containerID: 'noipt', netns: ns, env }, conf);
        expect(add.code, add.stdout).toBe(0);
        const ip = String((add.json as any).ips[0].address).split('/')[0]!;
        expect(hostPortTo(nftTable(n1.ns), 8080, ip, 80)).toBe(true);
        const del = await execCni(
          n1.runner,
          BIN,
          'DEL',
          { containerID: 'noipt', netns: ns, env },
          pluginConf(n1.list, 0, { portMappings: MAPPINGS }, add.json),
        );
        expect(del.code, del.stdout).toBe(0);
        expect(nftTable(n1.ns)).not.toMatch(PER_POD);
      } finally {
        sh('ip', ['netns', 'del', 'pwlab-noipt-pod']);
      }
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});

describe('doctor on an nftables node', () => {
  type Finding = { check: string; ok: boolean; what?: string; fix?: { argv: string[]; input?: string }[] };
  const doctor = async (): Promise<Finding[]> => {
    const r = await run(BIN, ['doctor', '--lab', 'node1', '--json', '--no-probe']);
    return (JSON.parse(r.stdout) as { findings: Finding[] }).findings;
  };
  const bad = async () => (await doctor()).filter((f) => !f.ok);
  const fix = async (f: Finding) => {
    for (const x of f.fix ?? []) expect((await run(x.argv[0]!, x.argv.slice(1), { input: x.input })).code).toBe(0);
  };
  const inNode = (...args: string[]) => sh('ip', ['netns', 'exec', n1.ns, ...args]);

  it('checks the table, names rules of both backends and a chain gone, and node up (its fix) mends both', async () => {
    await switchTo('nftables');
    const all = await doctor();
    expect(all.find((f) => f.check === 'firewall')).toMatchObject({ ok: true });
    expect(all.find((f) => f.check === 'firewall-both')).toMatchObject({ ok: true });
    expect(await bad()).toEqual([]);

    inNode('iptables', '-t', 'filter', '-N', 'PODWIRE-FORWARD'); // what a switch gone wrong leaves
    inNode('nft', 'delete', 'chain', 'inet', 'podwire', 'node-postrouting');
    const found = await bad();
    expect(found.map((f) => f.check).sort()).toEqual(['firewall', 'firewall-both']);
    expect(found.find((f) => f.check === 'firewall')!.what).toMatch(/chain node-postrouting is missing/);
    expect(found.find((f) => f.check === 'firewall-both')!.what).toMatch(/iptables filter PODWIRE-FORWARD/);
    await fix(found[0]!);
    expect(await bad()).toEqual([]);
  });

  it("an iptables FORWARD policy DROP, which podwire's nftables accept cannot overrule, is named", async () => {
    inNode('iptables', '-P', 'FORWARD', 'DROP');
    try {
      const found = await bad();
      expect(found.map((f) => f.check)).toEqual(['forward-chain']);
      expect(found[0]!.what).toMatch(/FORWARD's policy is DROP, and podwire's rules are in nftables/);
    } finally {
      inNode('iptables', '-P', 'FORWARD', 'ACCEPT');
    }
  });
});
