// podwire first in a chain of reference plugins (cni-conf/podwire-chain.conflist): portmap (hostPort),
// bandwidth (tc shaping on the host veth and an ifb device) and tuning (a sysctl in the pod). prevResult
// flows down the chain; a client on the node's network reaches NodeIP:hostPort and gets the pod's
// containerPort; DEL in reverse order leaves no rule, no qdisc, no ifb device and no address.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox, links, nsPath, requireRoot, sh } from '../helpers/netns.js';
import { httpGet } from '../../src/lab/netns.js';
import { addList, delList, loadConflist } from '../helpers/conflist.js';
import { linkClient } from '../helpers/runtimes.js';

const sb = new Sandbox();
let server: ChildProcess | undefined;
afterAll(() => {
  server?.kill();
  sb.cleanup();
});
beforeAll(requireRoot);

describe('podwire + portmap + bandwidth + tuning', () => {
  it('ADD passes prevResult down the chain; hostPort works from another host; DEL cleans everything', async () => {
    const node = sb.ns('chnode');
    const client = sb.ns('chclient');
    linkClient(node, client, '192.168.77.1', '192.168.77.2');
    const dir = sb.dir();
    writeFileSync(join(dir, 'subnet.json'), JSON.stringify({ podCIDR: '10.244.7.0/24' }));
    const list = loadConflist('podwire-chain.conflist', (pl) => {
      if (pl.type === 'podwire')
        Object.assign(pl, {
          logFile: join(dir, 'podwire.log'),
          ipam: { ...pl.ipam, subnetFile: join(dir, 'subnet.json'), dataDir: join(dir, 'ipam') },
        });
    });
    const pod = sb.ns('chpod');
    const call = { containerID: 'chain', netns: nsPath(pod) };
    const rc = {
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
      bandwidth: { ingressRate: 8_000_000, ingressBurst: 800_000, egressRate: 8_000_000, egressBurst: 800_000 },
    };

    const r = await addList(node, list, call, rc);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // The last plugin's result still carries podwire's interfaces and address: prevResult flowed through.
    expect(r.json.ips[0].address).toBe('10.244.7.2/24');
    const hostVeth = r.json.interfaces.find((i: { name: string; sandbox?: string }) => !i.sandbox && i.name.startsWith('veth')).name;
    expect(sh('ip', ['netns', 'exec', pod, 'sysctl', '-n', 'net.ipv4.conf.eth0.accept_redirects']).trim()).toBe('0');
    expect(sh('ip', ['netns', 'exec', node, 'tc', 'qdisc', 'show', 'dev', hostVeth])).toMatch(/tbf/);
    expect(links(node).some((l) => l.ifname.startsWith('bwp'))).toBe(true);

    // A web server on containerPort 80 in the pod; a client on the node's network asks NodeIP:8080.
    const www = sb.dir();
    writeFileSync(join(www, 'index.html'), 'hello from the pod\n');
    server = spawn('ip', ['netns', 'exec', pod, 'busybox', 'httpd', '-f', '-p', '80', '-h', www], { stdio: 'ignore' });
    await new Promise((res) => setTimeout(res, 300));
    const reply = await httpGet(client, '192.168.77.1', 8080);
    expect(reply).toContain('hello from the pod');
    server.kill();

    const dels = await delList(node, list, call, r.json, rc);
    expect(dels.map((d) => [d.code, d.stdout])).toEqual(dels.map(() => [0, '']));
    const nat = sh('ip', ['netns', 'exec', node, 'iptables-save']);
    expect(nat).not.toContain('8080');
    expect(nat).not.toContain('10.244.7.2');
    expect(
      links(node)
        .map((l) => l.ifname)
        .filter((n) => n.startsWith('bwp') || n === hostVeth),
    ).toEqual([]);
    expect(
      sh('ls', [join(dir, 'ipam', 'podwire-chain')])
        .split('\n')
        .filter((f) => /^\d/.test(f)),
    ).toEqual([]);
  });
});
