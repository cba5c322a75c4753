// hostPort done by podwire itself (capabilities.portMappings, no portmap plugin) on a two-node lab:
// NodeIP:hostPort reaches the pod's containerPort from another node, from a host outside the cluster, from
// another pod on the same node and from the pod itself (hairpin); TCP and UDP; DEL and GC leave no rule.
// Each of it with the nftables backend (map elements in table inet podwire) and with iptables (a chain per pod).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabNode, type LabPod } from '../../src/lab/lab.js';
import { httpGet, labDown } from '../../src/lab/netns.js';
import { serve } from '../../src/lab/services.js';
import { execCni, pluginConf } from '../../src/lab/runtime.js';
import { pictureIn } from '../../src/explore/services.js';
import { BIN, requireRoot, sh } from '../helpers/netns.js';
import type { FirewallBackend } from '../../src/firewall/choose.js';

const MAPPINGS = [
  { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
  { hostPort: 5353, containerPort: 53, protocol: 'udp' },
];

const iptablesNat = (n: LabNode) => sh('ip', ['netns', 'exec', n.ns, 'iptables-save', '-t', 'nat']);
const nftTable = (n: LabNode) => {
  try {
    return sh('ip', ['netns', 'exec', n.ns, 'nft', 'list', 'table', 'inet', 'podwire']);
  } catch {
    return '';
  }
};

/** One UDP datagram to NodeIP:5353 from a namespace; returns what the pod's UDP listener received. */
async function udpEcho(p: LabPod, fromNs: string, to: string): Promise<string> {
  // busybox's nc has no UDP here: node's dgram on both ends.
  const listen =
    "const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{process.stdout.write(m);process.exit(0)});s.bind(53);setTimeout(()=>process.exit(1),3000)";
  const listener = spawn('ip', ['netns', 'exec', p.ns, process.execPath, '-e', listen], { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise((r) => listener.on('exit', r));
  let got = '';
  listener.stdout!.on('data', (d) => (got += d));
  await new Promise((r) => setTimeout(r, 300));
  const send = `const s=require('dgram').createSocket('udp4');s.send('udp-hello',5353,'${to}',()=>s.close())`;
  sh('ip', ['netns', 'exec', fromNs, process.execPath, '-e', send]);
  await exited;
  return got;
}

describe.each<FirewallBackend>(['nftables', 'iptables'])('firewall backend %s', (backend) => {
  let lab: Lab;
  let outside = '';
  /**
   * The node's nat rules of this backend, as text: without iptables-save's timestamp lines and nft's
   * counters, which change between two reads with nothing else changing.
   */
  const nat = (n: LabNode) =>
    (backend === 'nftables' ? nftTable(n) : iptablesNat(n))
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n')
      .replace(/counter packets \d+ bytes \d+/g, 'counter');
  /** The other backend's: podwire leaves nothing there. */
  const otherBackend = (n: LabNode) => (backend === 'nftables' ? iptablesNat(n) : nftTable(n));
  /** The node's rule that sends hostPort 8080 to ip:80. */
  const dnat = (ip: string) => (backend === 'nftables' ? `tcp . 8080 comment` : `--to-destination ${ip}:80`);
  const dnatTo = (t: string, ip: string) =>
    backend === 'nftables'
      ? new RegExp(`tcp \\. 8080 comment "[0-9a-f]{16} \\S+" : ${ip.replace(/\./g, '\\.')} \\. 80`).test(t)
      : t.includes(dnat(ip));
  /** How many attachments have hostPort rules: chains (iptables) or distinct owners of elements (nftables). */
  const holders = (t: string) =>
    backend === 'nftables'
      ? new Set([...t.matchAll(/comment "([0-9a-f]{16}) /g)].map((m) => m[1])).size
      : t.split('\n').filter((l) => l.startsWith(':PW-HP-')).length;
  /** What stays for the next pod: the shared chains. */
  const shared = backend === 'nftables' ? 'chain hostports {' : ':PODWIRE-HOSTPORTS';
  const nothingOfPodwire = (t: string) => expect(t).not.toMatch(/PODWIRE|PW-HP-|PW-MASQ-|table inet podwire/);

  beforeAll(async () => {
    requireRoot();
    labDown();
    lab = Lab.create(BIN, 'vxlan', 2, 'ipv4', backend);
    await bringUp(lab);
    outside = lab.outside;
    // The lab's conflist (cni-conf/podwire-subnetfile.conflist) is podwire alone, declaring portMappings.
    expect(lab.nodes[0]!.list.plugins.map((p) => [p.type, p.capabilities])).toEqual([['podwire', { portMappings: true }]]);
  }, 60_000);

  afterAll(() => {
    labDown();
  });

  describe('hostPort built into podwire', () => {
    let web: LabPod;
    let other: LabPod;

    it('NodeIP:hostPort reaches containerPort from another node, from outside, from a pod beside it and from itself', async () => {
      const [n1, n2] = lab.nodes as [LabNode, LabNode];
      web = await lab.addPod(n1, 'web', { portMappings: MAPPINGS });
      other = await lab.addPod(n1, 'other');
      serve(web, 80);
      await new Promise((r) => setTimeout(r, 300));
      expect(dnatTo(nat(n1), web.ip)).toBe(true);
      nothingOfPodwire(otherBackend(n1));
      // The pictures (diagram, podwire web) read them back from either backend.
      expect((await pictureIn(n1.ns)).hostPorts).toEqual({ [web.ip]: ['8080/tcp → 80', '5353/udp → 53'] });
      expect(await httpGet(n2.ns, n1.nodeIP, 8080)).toContain('hello from web'); // another node
      expect(await httpGet(outside, n1.nodeIP, 8080)).toContain('hello from web'); // outside the cluster
      expect(await httpGet(other.ns, n1.nodeIP, 8080)).toContain('hello from web'); // same node, same bridge
      expect(await httpGet(web.ns, n1.nodeIP, 8080)).toContain('hello from web'); // hairpin: itself
      expect(await httpGet(n1.ns, n1.nodeIP, 8080)).toContain('hello from web'); // the node itself (OUTPUT)
    });

    it('UDP hostPorts too', async () => {
      const [, n2] = lab.nodes as [LabNode, LabNode];
      expect(await udpEcho(web, outside, web.node.nodeIP)).toContain('udp-hello');
      expect(await udpEcho(web, n2.ns, web.node.nodeIP)).toContain('udp-hello');
    });

    it("DEL removes the pod's rules and chain; the shared chains stay for the next pod", async () => {
      const n1 = web.node;
      expect(holders(nat(n1))).toBe(1);
      await lab.delPod(web);
      const after = nat(n1);
      expect(holders(after)).toBe(0);
      expect(after).not.toContain(web.ip);
      expect(after).not.toContain('8080');
      expect(after).toContain(shared);
      expect(await httpGet(outside, n1.nodeIP, 8080)).toBe(''); // refused now
      await lab.delPod(other);
    });

    it('a failed ADD (bad portMappings) changes nothing: no address, no veth, no rule', async () => {
      const n1 = lab.nodes[0]!;
      const before = { nat: nat(n1), links: sh('ip', ['-n', n1.ns, '-o', 'link', 'show']) };
      await expect(lab.addPod(n1, 'bad', { portMappings: [{ hostPort: 8080, containerPort: 0 }] })).rejects.toThrow(
        /portMappings\[0\]\.containerPort/,
      );
      expect(nat(n1)).toBe(before.nat);
      expect(sh('ip', ['-n', n1.ns, '-o', 'link', 'show'])).toBe(before.links);
    });

    it('nftables: a hostPort another pod holds is refused, and the failed ADD is undone whole (address, veth, elements)', async () => {
      if (backend !== 'nftables') return; // iptables lets the first rule shadow the second, as before
      const n1 = lab.nodes[0]!;
      const holder = await lab.addPod(n1, 'holder', { portMappings: MAPPINGS });
      try {
        // Counters move with traffic: compare the rules and elements, not them.
        const rules = () => nat(n1).replace(/counter packets \d+ bytes \d+/g, 'counter');
        const before = {
          nat: rules(),
          links: sh('ip', ['-n', n1.ns, '-o', 'link', 'show']),
          ips: sh('ls', [join(n1.dir, 'ipam', n1.list.name)]),
        };
        await expect(lab.addPod(n1, 'second', { portMappings: [MAPPINGS[0]!] })).rejects.toThrow(
          /hostPort is already taken on this node by another pod/,
        );
        expect(rules()).toBe(before.nat);
        expect(sh('ip', ['-n', n1.ns, '-o', 'link', 'show'])).toBe(before.links);
        expect(sh('ls', [join(n1.dir, 'ipam', n1.list.name)])).toBe(before.ips);
        expect(dnatTo(nat(n1), holder.ip)).toBe(true); // the holder keeps it
      } finally {
        await lab.delPod(holder);
      }
    });

    it('GC removes the hostPort chain of an attachment the runtime no longer knows', async () => {
      const n1 = lab.nodes[0]!;
      const lost = await lab.addPod(n1, 'lost', { portMappings: MAPPINGS });
      expect(dnatTo(nat(n1), lost.ip)).toBe(true);
      const conf = { ...pluginConf(n1.list, 0, {}), cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] };
      const r = await execCni(n1.runner, BIN, 'GC', {}, conf);
      expect(r.code, r.stdout).toBe(0);
      const after = nat(n1);
      expect(after).not.toContain(lost.ip);
      expect(holders(after)).toBe(0);
      nothingOfPodwire(otherBackend(n1));
    });
  });
});
