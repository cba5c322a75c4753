// The trace (PODWIRE_TRACE / "trace" in the config): the built binary, executed as a runtime does, tells
// each step of ADD and DEL with the exact command and why. The commands are checked by running them again
// by hand: they must rebuild the same wiring. Needs root; everything happens in namespaces made here.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox, cni, links, nsPath, requireRoot, sh } from '../helpers/netns.js';

const box = new Sandbox();
beforeAll(requireRoot);
afterAll(() => box.cleanup());

function setup(extra: Record<string, unknown> = {}) {
  const node = box.ns('tn');
  const pod = box.ns('tp');
  const dir = box.dir();
  const log = join(dir, 'podwire.log');
  const conf = {
    cniVersion: '1.1.0',
    name: 'tracenet',
    type: 'podwire',
    logFile: log,
    ...extra,
    ipam: { type: 'podwire-ipam', subnet: '10.244.7.0/24', dataDir: join(dir, 'ipam') },
  };
  const call = (command: string, env?: Record<string, string>) => ({
    command,
    containerID: 'ctr-trace',
    netns: nsPath(pod),
    ifname: 'eth0',
    env,
  });
  const logLines = (): any[] => {
    try {
      return readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    } catch {
      return [];
    }
  };
  return { node, pod, dir, conf, call, logLines };
}

/** The numbered steps of a trace: [number, what, commands, why]. */
function steps(text: string, why = 'why: '): { n: number; what: string; cmds: string[]; why: string }[] {
  const out: { n: number; what: string; cmds: string[]; why: string }[] = [];
  for (const line of text.split('\n')) {
    const head = /^\s*(\d+)\. (.*)$/.exec(line);
    if (head) out.push({ n: Number(head[1]), what: head[2]!, cmds: [], why: '' });
    else if (line.trimStart().startsWith('$ ')) out.at(-1)!.cmds.push(line.trimStart().slice(2));
    else if (line.trimStart().startsWith(why)) out.at(-1)!.why = line.trimStart().slice(why.length);
  }
  return out;
}

/** What a pod's wiring looks like, without what changes from one creation to the next (ifindex, stats). */
function wiring(node: string, pod: string) {
  const shape = (ns: string) =>
    links(ns)
      .map((l) => ({
        ifname: l.ifname,
        master: l.master,
        mtu: l.mtu,
        mac: l.address,
        up: l.flags.includes('UP'),
        addrs: l.addr_info.map((a) => `${a.local}/${a.prefixlen}`),
      }))
      .sort((a, b) => a.ifname.localeCompare(b.ifname));
  const routes = sh('ip', ['-n', pod, 'route', 'show']).trim();
  const hairpin = (dev: string) => JSON.parse(sh('ip', ['-n', node, '-j', '-d', 'link', 'show', dev]))[0].linkinfo.info_slave_data.hairpin;
  return {
    node: shape(node),
    pod: shape(pod),
    routes,
    hairpin: shape(node)
      .filter((l) => l.ifname.startsWith('veth'))
      .map((l) => hairpin(l.ifname)),
  };
}

describe('trace', () => {
  it('PODWIRE_TRACE=stderr: ADD tells each step, numbered, with the exact command and why; stdout stays the result', async () => {
    const t = setup();
    const add = await cni(t.node, t.call('ADD', { PODWIRE_TRACE: 'stderr' }), t.conf);
    expect(add.code, add.stderr).toBe(0);
    expect(add.json.ips[0].address).toBe('10.244.7.2/24'); // stdout is the result JSON alone
    const veth = add.json.interfaces[1].name as string;
    const podMac = add.json.interfaces[2].mac as string;

    expect(add.stderr).toMatch(/^podwire ADD ctr-trace\/eth0 \(network tracenet, netns \/run\/netns\/\S+\)\n/);
    const s = steps(add.stderr);
    expect(s.map((x) => x.n)).toEqual(s.map((_, i) => i + 1));
    for (const x of s) expect(x.why.length, x.what).toBeGreaterThan(20);
    // The story a learner reads, in order.
    const order = [
      /take the next free address from the node's slice 10\.244\.7\.0\/24: 10\.244\.7\.2/,
      new RegExp(`create the veth pair ${veth} <-> eth0: .*pause container's network namespace, already named eth0`),
      /create the bridge cni0/,
      /give cni0 the gateway address 10\.244\.7\.1\/24/,
      new RegExp(`attach the host end ${veth} to cni0`),
      new RegExp(`turn hairpin on for ${veth}`),
      /give eth0 the Pod IP 10\.244\.7\.2\/24/,
      /add the default route via 10\.244\.7\.1/,
      /forwards IPv4/,
    ];
    const at = order.map((re) => s.findIndex((x) => re.test(x.what)));
    expect(
      at.every((i) => i >= 0),
      JSON.stringify(at),
    ).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    // The exact commands, with this pod's names, addresses and MAC.
    const veth_ = s.find((x) => x.what.startsWith('create the veth pair'))!;
    expect(veth_.cmds).toEqual([
      expect.stringMatching(
        new RegExp(`^ip link add name ${veth} .* type veth peer name eth0 address ${podMac} mtu 1500 netns ${nsPath(t.pod)}$`),
      ),
    ]);
    expect(veth_.why).toMatch(/move the peer into the pod's namespace, rename it to eth0/);
    expect(s.find((x) => x.what.startsWith('add the default route'))!.cmds).toEqual([
      `ip -n ${t.pod} route replace 0.0.0.0/0 via 10.244.7.1 dev eth0`,
    ]);
    expect(s[0]!.cmds).toEqual([`create file ${join(t.dir, 'ipam', 'tracenet', '10.244.7.2')} containing "ctr-trace\\r\\neth0"`]);
    expect(add.stderr).toMatch(/=> ADD ok in [\d.]+ ms: 10\.244\.7\.2\/24\n$/);

    // The log file has the same steps, one line each.
    const traced = t.logLines().filter((l) => l.trace !== undefined);
    expect(traced.map((l) => l.trace)).toEqual([...s.map((x) => x.n), 'end']);
    expect(traced[3].what).toBe(s[3]!.what);
  });

  it('in Chinese (LANG=zh_CN or PODWIRE_LANG=zh): the same steps and commands, told in Chinese; the log stays English', async () => {
    // Two nodes alike, one traced in English and one in Chinese; only their names and paths differ.
    const [a, t] = [setup({ ipMasq: true }), setup({ ipMasq: true })];
    const en = await cni(a.node, a.call('ADD', { PODWIRE_TRACE: 'stderr' }), a.conf);
    const zh = await cni(t.node, t.call('ADD', { PODWIRE_TRACE: 'stderr', LANG: 'zh_CN.UTF-8' }), t.conf);
    expect(en.code, en.stderr).toBe(0);
    expect(zh.code, zh.stderr).toBe(0);
    expect(zh.json.ips).toEqual(en.json.ips); // stdout is the result, in no language
    const same = (x: { cmds: string[] }, o: ReturnType<typeof setup>) =>
      x.cmds.map((c) => c.replaceAll(o.dir, 'DIR').replaceAll(o.pod, 'POD').replaceAll(o.node, 'NODE'));
    const [se, sz] = [steps(en.stderr), steps(zh.stderr, '原因: ')];
    expect(sz.map((x) => same(x, t))).toEqual(se.map((x) => same(x, a)));
    expect(zh.stderr).toMatch(/^podwire ADD ctr-trace\/eth0（网络 tracenet，网络命名空间 \/run\/netns\/\S+）\n/);
    const han = /[\u4e00-\u9fff]/;
    for (const x of sz) {
      expect(han.test(x.what), x.what).toBe(true);
      expect(han.test(x.why), x.what).toBe(true);
      expect(x.what + x.why).not.toMatch(/\{\w+\}/);
    }
    expect(sz[0]!.what).toBe('从节点的地址片 10.244.7.0/24 中取下一个空闲地址：10.244.7.2');
    expect(sz.map((x) => x.what)).toContain('给 eth0 配上 Pod IP 10.244.7.2/24');
    expect(sz.map((x) => x.what)).toContain('添加 Pod 的 nftables 元素：伪装 10.244.7.2');
    expect(zh.stderr).toMatch(/=> ADD 成功，用时 [\d.]+ 毫秒: 10\.244\.7\.2\/24\n$/);
    const logged = t.logLines().filter((l) => l.trace !== undefined && l.trace !== 'end');
    expect(logged.map((l) => l.what)).toEqual(se.map((x) => x.what));
    const del = await cni(t.node, t.call('DEL', { PODWIRE_TRACE: 'stderr', PODWIRE_LANG: 'zh' }), t.conf);
    expect(del.stderr).toContain('把 Pod IP 10.244.7.2 释放回节点的地址片');
  });

  it('the traced ip commands, run again by hand, rebuild exactly the same wiring', async () => {
    const t = setup();
    const add = await cni(t.node, t.call('ADD', { PODWIRE_TRACE: 'stderr' }), t.conf);
    expect(add.code, add.stderr).toBe(0);
    const before = wiring(t.node, t.pod);
    const ipCmds = steps(add.stderr)
      .flatMap((x) => x.cmds)
      .filter((c) => c.startsWith('ip '));
    expect(ipCmds.length).toBeGreaterThanOrEqual(9);

    // Take it apart (the pod end goes with the host end), then replay: host-side commands ran in the node's
    // namespace (where the runtime executed the plugin), pod-side ones name the pod's namespace themselves.
    sh('ip', ['-n', t.node, 'link', 'del', add.json.interfaces[1].name]);
    sh('ip', ['-n', t.node, 'link', 'del', 'cni0']);
    expect(links(t.pod).map((l) => l.ifname)).toEqual(['lo']);
    for (const c of ipCmds) {
      const args = c.split(' ').slice(1);
      execFileSync('ip', args[0] === '-n' ? args : ['-n', t.node, ...args]);
    }
    expect(wiring(t.node, t.pod)).toEqual(before);
  });

  it('ipMasq and hostPort steps list the exact iptables commands: the rules they name exist after ADD and are gone after DEL', async () => {
    const t = setup({
      ipMasq: true,
      firewallBackend: 'iptables',
      capabilities: { portMappings: true },
      runtimeConfig: { portMappings: [{ hostPort: 8081, containerPort: 80 }] },
    });
    const add = await cni(t.node, t.call('ADD', { PODWIRE_TRACE: 'stderr' }), t.conf);
    expect(add.code, add.stderr).toBe(0);
    const nat = () => sh('ip', ['netns', 'exec', t.node, 'iptables-save', '-t', 'nat']).split('\n');
    const ipt = (trace: string) =>
      steps(trace)
        .flatMap((x) => x.cmds)
        .filter((c) => c.startsWith('iptables -t nat '));
    const added = ipt(add.stderr);
    // A fresh node: this ADD made the shared hostPort chains, and says so.
    expect(added).toContain('iptables -t nat -N PODWIRE-HOSTPORTS');
    expect(added).toContain('iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j PODWIRE-HOSTPORTS');
    const saved = nat();
    for (const c of added) {
      const rule = c.slice('iptables -t nat '.length);
      if (rule.startsWith('-A ')) expect(saved, c).toContain(rule);
      else
        expect(
          saved.some((l) => l.startsWith(`:${rule.slice(3)} `)),
          c,
        ).toBe(true); // -N CHAIN
    }
    const del = await cni(t.node, t.call('DEL', { PODWIRE_TRACE: 'stderr' }), t.conf);
    expect(del.code).toBe(0);
    const removed = ipt(del.stderr).filter((c) => c.includes(' -D '));
    expect(removed).toHaveLength(3); // the jumps to the masquerade and hostPort chains, and the hairpin rule
    const after = nat();
    for (const c of removed) expect(after).not.toContain(c.replace('iptables -t nat -D ', '-A '));
    expect(after.some((l) => /PW-(MASQ|HP)-/.test(l))).toBe(false);
  });

  it('with nftables, one step lists the exact nft lines: each element exists after ADD, and is gone after DEL', async () => {
    const t = setup({
      ipMasq: true,
      firewallBackend: 'nftables',
      capabilities: { portMappings: true },
      runtimeConfig: { portMappings: [{ hostPort: 8081, containerPort: 80 }] },
    });
    const add = await cni(t.node, t.call('ADD', { PODWIRE_TRACE: 'stderr' }), t.conf);
    expect(add.code, add.stderr).toBe(0);
    const nft = (trace: string) =>
      steps(trace)
        .flatMap((x) => x.cmds)
        .filter((c) => c.startsWith('nft '));
    const added = nft(add.stderr).filter((c) => c.startsWith('nft add element inet podwire '));
    // masq4 and masqown4, one hostport4 map element, one hairpin4 element: in one transaction, one step.
    expect(added).toHaveLength(4);
    expect(steps(add.stderr).filter((x) => x.cmds.some((c) => c.startsWith('nft add element inet podwire '))).length).toBe(1);
    const table = () => sh('ip', ['netns', 'exec', t.node, 'nft', 'list', 'table', 'inet', 'podwire']);
    const shown = table();
    for (const c of added) {
      const element = /\{ (.*) \}$/.exec(c)![1]!;
      expect(shown, c).toContain(element);
    }
    const del = await cni(t.node, t.call('DEL', { PODWIRE_TRACE: 'stderr' }), t.conf);
    expect(del.code, del.stdout).toBe(0);
    expect(nft(del.stderr).filter((c) => c.startsWith('nft delete element inet podwire '))).toHaveLength(4);
    expect(table()).not.toMatch(/comment "[0-9a-f]{16} /);
  });

  it('"trace": true in the config writes the log only; no trace, no trace lines and nothing on stderr', async () => {
    const quiet = setup();
    const add = await cni(quiet.node, quiet.call('ADD'), quiet.conf);
    expect(add.code).toBe(0);
    expect(add.stderr).toBe('');
    expect(quiet.logLines().filter((l) => l.trace !== undefined)).toEqual([]);

    const logged = setup({ trace: true });
    const add2 = await cni(logged.node, logged.call('ADD'), logged.conf);
    expect(add2.code).toBe(0);
    expect(add2.stderr).toBe('');
    expect(logged.logLines().filter((l) => l.trace !== undefined).length).toBeGreaterThan(8);
  });

  it('DEL tells what it released and removed; a repeated DEL says it was done already', async () => {
    const t = setup();
    expect((await cni(t.node, t.call('ADD'), t.conf)).code).toBe(0);
    const veth = links(t.node).find((l) => l.ifname.startsWith('veth'))!.ifname;
    const del = await cni(t.node, t.call('DEL', { PODWIRE_TRACE: 'stderr' }), t.conf);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toBe('');
    const s = steps(del.stderr);
    expect(s.map((x) => x.what)).toEqual([
      "release the Pod IP 10.244.7.2 back to the node's slice",
      `delete the host end ${veth} of the veth pair`,
      `remove the pod's binding to its port ${veth}`,
    ]);
    expect(s[1]!.cmds).toEqual([`ip link del dev ${veth}`]);
    expect(s[1]!.why).toMatch(/deletes both: the pod's eth0 goes with it/);

    const again = await cni(t.node, t.call('DEL', { PODWIRE_TRACE: '1' }), t.conf);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe(''); // 1 = the log file only
    const whats = t
      .logLines()
      .filter((l) => typeof l.trace === 'number')
      .slice(-2)
      .map((l) => l.what);
    expect(whats).toEqual([
      'no address is reserved for ctr-trace/eth0',
      expect.stringMatching(/^the host end veth[0-9a-f]{8} is gone already$/),
    ]);
  });

  it('a failed ADD shows the step the kernel refused and what was undone', async () => {
    const t = setup();
    sh('ip', ['-n', t.pod, 'link', 'add', 'eth0', 'type', 'bridge']); // the name the veth's pod end needs
    const add = await cni(t.node, t.call('ADD', { PODWIRE_TRACE: 'stderr' }), t.conf);
    expect(add.json.code).toBe(102);
    const s = steps(add.stderr);
    const failedAt = s.findIndex((x) => x.what.startsWith('create the veth pair'));
    expect(failedAt).toBeGreaterThan(0);
    expect(add.stderr).toMatch(/FAILED: ip: "link add name veth/);
    // The binding, made beside the host side, is told and undone with the address.
    expect(s.slice(failedAt + 1).map((x) => x.what)).toEqual([
      expect.stringMatching(/^bind the pod to its port veth[0-9a-f]{8}: MAC /),
      "undo: remove the pod's binding to its port",
      'undo: release the address',
    ]);
    expect(sh('ip', ['netns', 'exec', t.node, 'nft', 'list', 'table', 'bridge', 'podwire-guard'])).not.toMatch(/veth[0-9a-f]{8}/);
    expect(add.stderr).toMatch(/=> ADD failed \(code 102\): interface eth0 already exists/);
    expect(links(t.node).filter((l) => l.ifname.startsWith('veth'))).toEqual([]);
  });

  it('a bad PODWIRE_TRACE or "trace" is refused, naming it, and changes nothing', async () => {
    const t = setup();
    const env = await cni(t.node, t.call('ADD', { PODWIRE_TRACE: 'verbose' }), t.conf);
    expect(env.json.code).toBe(4);
    expect(env.json.msg).toMatch(/PODWIRE_TRACE/);
    const conf = await cni(t.node, t.call('ADD'), { ...t.conf, trace: 'yes' });
    expect(conf.json.code).toBe(7);
    expect(conf.json.msg).toMatch(/trace: must be true, false or "stderr"/);
    expect(links(t.node).map((l) => l.ifname)).toEqual(['lo']);
    expect(links(t.pod).map((l) => l.ifname)).toEqual(['lo']);
    expect(readdirSync(t.dir)).not.toContain('ipam');
  });
});
