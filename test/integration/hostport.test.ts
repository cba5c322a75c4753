// hostPort done by podwire itself (capabilities.portMappings, no portmap plugin) on a two-node lab:
// NodeIP:hostPort reaches the pod's containerPort from another node, from a host outside the cluster, from
// another pod on the same node and from the pod itself (hairpin); TCP and UDP; DEL and GC leave no rule.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabNode, type LabPod } from '../../src/lab/lab.js';
import { httpGet, labDown } from '../../src/lab/netns.js';
import { serve } from '../../src/lab/services.js';
import { execCni, pluginConf } from '../../src/lab/runtime.js';
import { BIN, requireRoot, sh } from '../helpers/netns.js';

let lab: Lab;
let outside = '';
const MAPPINGS = [
  { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
  { hostPort: 5353, containerPort: 53, protocol: 'udp' },
];

const nat = (n: LabNode) => sh('ip', ['netns', 'exec', n.ns, 'iptables-save', '-t', 'nat']);

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

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 2);
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
    expect(nat(n1)).toContain(`--to-destination ${web.ip}:80`);
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
    const chainCount = (t: string) => t.split('\n').filter((l) => l.startsWith(':PW-HP-')).length;
    expect(chainCount(nat(n1))).toBe(1);
    await lab.delPod(web);
    const after = nat(n1);
    expect(chainCount(after)).toBe(0);
    expect(after).not.toContain(web.ip);
    expect(after).not.toContain('8080');
    expect(after).toContain(':PODWIRE-HOSTPORTS');
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

  it('GC removes the hostPort chain of an attachment the runtime no longer knows', async () => {
    const n1 = lab.nodes[0]!;
    const lost = await lab.addPod(n1, 'lost', { portMappings: MAPPINGS });
    expect(nat(n1)).toContain(`--to-destination ${lost.ip}:80`);
    const conf = { ...pluginConf(n1.list, 0, {}), cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] };
    const r = await execCni(n1.runner, BIN, 'GC', {}, conf);
    expect(r.code, r.stdout).toBe(0);
    const after = nat(n1);
    expect(after).not.toContain(lost.ip);
    expect(after.split('\n').filter((l) => l.startsWith(':PW-HP-'))).toEqual([]);
  });
});
