// The built dist/podwire executed exactly as a runtime does (CNI_* env, config on stdin), inside a "node"
// namespace this test makes, wiring pods into namespaces it makes. Needs root.
import { existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUPPORTED_VERSIONS, compareVersions } from '../../src/cni/version.js';
import { BIN, REF_PLUGINS, Sandbox, cni, linkNames, links, nsPath, ping, requireRoot, sh } from '../helpers/netns.js';
import { addList, delList, loadConflist } from '../helpers/conflist.js';

const box = new Sandbox();
beforeAll(requireRoot);
afterAll(() => box.cleanup());

const IP_FILE = /^(\d+\.\d+\.\d+\.\d+|[0-9a-f:]+:[0-9a-f:]*)$/;

/** A fresh node: its namespace, a state dir, and a config factory pointing there. */
function makeNode(ipam: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const node = box.ns('n');
  const dir = box.dir();
  const conf = (cniVersion = '1.1.0', more: Record<string, unknown> = {}) => ({
    cniVersion,
    name: 'podnet',
    type: 'podwire',
    logFile: join(dir, 'podwire.log'),
    logLevel: 'debug',
    ...extra,
    ...more,
    ipam: { type: 'podwire-ipam', subnet: '10.244.1.0/24', dataDir: join(dir, 'ipam'), ...ipam },
  });
  const reservations = (): string[] => {
    const d = join(dir, 'ipam', 'podnet');
    return existsSync(d)
      ? readdirSync(d)
          .filter((n) => IP_FILE.test(n))
          .sort()
      : [];
  };
  const vethsOnNode = () => linkNames(node).filter((n) => n.startsWith('veth'));
  /** No address reserved, no veth on the node, nothing but lo in the pod. */
  const expectNothingLeft = (podNs?: string) => {
    expect(reservations()).toEqual([]);
    expect(vethsOnNode()).toEqual([]);
    if (podNs) expect(linkNames(podNs)).toEqual(['lo']);
  };
  return { node, dir, conf, reservations, vethsOnNode, expectNothingLeft };
}

const pod = () => {
  const ns = box.ns('p');
  return { ns, path: nsPath(ns) };
};

const addrOf = (result: any): string => result.ips[0].address.split('/')[0];

describe.each(SUPPORTED_VERSIONS)('cniVersion %s', (v) => {
  it('ADD -> CHECK -> DEL -> DEL', async () => {
    const n = makeNode();
    const p = pod();
    const call = { containerID: 'ctr1', netns: p.path, ifname: 'eth0' };

    const add = await cni(n.node, { ...call, command: 'ADD' }, n.conf(v));
    expect(add.code, add.stdout).toBe(0);
    const r = add.json;
    expect(r.cniVersion).toBe(v);
    expect(r.ips).toHaveLength(1);
    expect(r.ips[0]).toMatchObject({ address: '10.244.1.2/24', gateway: '10.244.1.1', interface: 2 });
    expect(r.ips[0].version).toBe(compareVersions(v, '1.0.0') < 0 ? '4' : undefined);
    expect(r.interfaces.map((i: any) => i.name)).toEqual(['cni0', expect.stringMatching(/^veth[0-9a-f]{8}$/), 'eth0']);
    expect(r.interfaces[2].sandbox).toBe(p.path);
    expect(r.interfaces[0].mtu).toBe(v === '1.1.0' ? 1500 : undefined);
    expect(r.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.244.1.1' }]);

    // the kernel agrees with the result
    const eth0 = links(p.ns).find((l) => l.ifname === 'eth0')!;
    expect(eth0.address).toBe(r.interfaces[2].mac);
    expect(eth0.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toContain('10.244.1.2/24');
    const veth = links(n.node).find((l) => l.ifname === r.interfaces[1].name)!;
    expect(veth.master).toBe('cni0');
    expect(n.reservations()).toEqual(['10.244.1.2']);

    const withPrev = n.conf(v, { prevResult: r });
    const check = await cni(n.node, { ...call, command: 'CHECK' }, withPrev);
    if (compareVersions(v, '0.4.0') < 0) {
      expect(check.code).not.toBe(0);
      expect(check.json.code).toBe(1);
    } else {
      expect(check.code, check.stdout).toBe(0);
      expect(check.stdout).toBe('');
    }

    for (let i = 0; i < 2; i++) {
      const del = await cni(n.node, { ...call, command: 'DEL' }, withPrev);
      expect(del.code, del.stdout).toBe(0);
      expect(del.stdout).toBe('');
    }
    n.expectNothingLeft(p.ns);
  });
});

describe('on one node', () => {
  it('pods reach each other and the gateway through the bridge; hairpin is on', async () => {
    const n = makeNode();
    const [a, b] = [pod(), pod()];
    const ra = await cni(n.node, { command: 'ADD', containerID: 'a', netns: a.path }, n.conf());
    const rb = await cni(n.node, { command: 'ADD', containerID: 'b', netns: b.path }, n.conf());
    expect([ra.code, rb.code]).toEqual([0, 0]);
    expect(ping(a.ns, addrOf(rb.json))).toBe(true);
    expect(ping(b.ns, addrOf(ra.json))).toBe(true);
    expect(ping(a.ns, '10.244.1.1')).toBe(true);
    expect(ping(a.ns, '10.244.1.200')).toBe(false); // nobody there: the check can fail
    const detail = JSON.parse(sh('ip', ['-n', n.node, '-j', '-d', 'link', 'show', 'dev', ra.json.interfaces[1].name]))[0];
    expect(detail.linkinfo.info_slave_data.hairpin).toBe(true);
    const bridge = JSON.parse(sh('ip', ['-n', n.node, '-j', 'link', 'show', 'dev', 'cni0']))[0];
    expect(bridge.address).toBe('0a:58:0a:f4:01:01');
    expect(sh('ip', ['netns', 'exec', n.node, 'cat', '/proc/sys/net/ipv4/ip_forward']).trim()).toBe('1');
  });

  it('64 parallel ADDs get 64 distinct IPs; 64 parallel DELs leave nothing', async () => {
    const n = makeNode();
    const pods = Array.from({ length: 64 }, pod);
    const adds = await Promise.all(pods.map((p, i) => cni(n.node, { command: 'ADD', containerID: `par${i}`, netns: p.path }, n.conf())));
    expect(adds.filter((r) => r.code !== 0).map((r) => r.stdout)).toEqual([]);
    const ips = adds.map((r) => addrOf(r.json));
    expect(new Set(ips).size).toBe(64);
    expect(n.reservations()).toHaveLength(64);
    expect(n.vethsOnNode()).toHaveLength(64);
    expect(ping(pods[0]!.ns, ips[63]!)).toBe(true);

    const dels = await Promise.all(pods.map((p, i) => cni(n.node, { command: 'DEL', containerID: `par${i}`, netns: p.path }, n.conf())));
    expect(dels.filter((r) => r.code !== 0).map((r) => r.stdout)).toEqual([]);
    expect(n.reservations()).toEqual([]);
    expect(n.vethsOnNode()).toEqual([]);
  });

  it('DEL with an empty CNI_NETNS (containerd ctr) releases the IP and removes the veth', async () => {
    const n = makeNode();
    const p = pod();
    expect((await cni(n.node, { command: 'ADD', containerID: 'ctr-x', netns: p.path }, n.conf())).code).toBe(0);
    const del = await cni(n.node, { command: 'DEL', containerID: 'ctr-x', netns: '' }, n.conf());
    expect(del.code, del.stdout).toBe(0);
    n.expectNothingLeft(p.ns);
  });

  it('DEL after the pod namespace vanished releases the IP', async () => {
    const n = makeNode();
    const p = pod();
    const add = await cni(n.node, { command: 'ADD', containerID: 'gone', netns: p.path }, n.conf());
    expect(add.code).toBe(0);
    box.delNs(p.ns);
    const del = await cni(n.node, { command: 'DEL', containerID: 'gone', netns: p.path }, n.conf('1.0.0', { prevResult: add.json }));
    expect(del.code, del.stdout).toBe(0);
    n.expectNothingLeft();
  });

  it('DEL of a container never added succeeds', async () => {
    const n = makeNode();
    const del = await cni(n.node, { command: 'DEL', containerID: 'never', netns: '/run/netns/does-not-exist' }, n.conf());
    expect(del.code, del.stdout).toBe(0);
  });

  it('a failure in the pod namespace half-way through ADD leaves nothing behind', async () => {
    // The route's gateway is not on any pod subnet: the kernel refuses it in the last batch of ADD.
    const n = makeNode({ routes: [{ dst: '192.0.2.0/24', gw: '198.51.100.1' }] });
    const p = pod();
    const add = await cni(n.node, { command: 'ADD', containerID: 'half', netns: p.path }, n.conf());
    expect(add.code).toBe(1);
    expect(add.json.code).toBe(103);
    expect(add.json.msg).toContain('192.0.2.0/24');
    n.expectNothingLeft(p.ns);
    // the allocator was not left locked or skewed: the next ADD works
    const ok = makeNode();
    expect((await cni(ok.node, { command: 'ADD', containerID: 'next', netns: p.path }, ok.conf())).code).toBe(0);
  });

  it('a failure on the host half-way through ADD leaves nothing behind', async () => {
    // "bridge" names a veth, not a bridge: our veth is created, then cannot be attached to it.
    const n = makeNode({}, { bridge: 'notabridge' });
    sh('ip', ['-n', n.node, 'link', 'add', 'notabridge', 'type', 'veth', 'peer', 'name', 'notabridge1']);
    const p = pod();
    const add = await cni(n.node, { command: 'ADD', containerID: 'half', netns: p.path }, n.conf());
    expect(add.code).toBe(1);
    expect(add.json).toMatchObject({ code: 7, msg: expect.stringContaining('bridge: notabridge exists and is not a bridge') });
    n.expectNothingLeft(p.ns);
  });

  it('ADD when the interface already exists in the pod is an error that keeps the existing one', async () => {
    const n = makeNode();
    const p = pod();
    const first = await cni(n.node, { command: 'ADD', containerID: 'dup', netns: p.path }, n.conf());
    expect(first.code).toBe(0);
    // another container's ADD into the same namespace and ifname
    const other = await cni(n.node, { command: 'ADD', containerID: 'dup2', netns: p.path }, n.conf());
    expect(other.json).toMatchObject({ code: 102, msg: expect.stringContaining('eth0 already exists') });
    // the same container again: its IP is kept, not released by the failed ADD's undo
    const again = await cni(n.node, { command: 'ADD', containerID: 'dup', netns: p.path }, n.conf());
    expect(again.json.code).toBe(102);
    expect(n.reservations()).toEqual(['10.244.1.2']);
    expect(ping(p.ns, '10.244.1.1')).toBe(true);
  });

  it('a /29 runs out with code 100, and STATUS says 50 until an address is freed', async () => {
    const n = makeNode({ subnet: '10.244.9.0/29' });
    const status = () => cni(n.node, { command: 'STATUS' }, n.conf());
    expect((await status()).code).toBe(0);
    for (let i = 0; i < 5; i++) {
      const r = await cni(n.node, { command: 'ADD', containerID: `s${i}`, netns: pod().path }, n.conf());
      expect(r.code, r.stdout).toBe(0);
    }
    expect(n.reservations()).toEqual(['10.244.9.2', '10.244.9.3', '10.244.9.4', '10.244.9.5', '10.244.9.6']);
    const full = await cni(n.node, { command: 'ADD', containerID: 's5', netns: pod().path }, n.conf());
    expect(full.json).toMatchObject({ code: 100, msg: expect.stringContaining('no free IP') });
    expect(n.vethsOnNode()).toHaveLength(5);
    expect((await status()).json).toMatchObject({ code: 50 });
    expect((await cni(n.node, { command: 'STATUS' }, n.conf('1.0.0'))).json.code).toBe(1);
    expect((await cni(n.node, { command: 'DEL', containerID: 's0', netns: '' }, n.conf())).code).toBe(0);
    expect((await status()).code).toBe(0);
  });

  it.each(['cni.dev/valid-attachments', 'cni.dev/attachments'])('GC (%s) releases what is not listed, host veth included', async (key) => {
    const n = makeNode();
    const pods = [pod(), pod(), pod()];
    for (const [i, p] of pods.entries()) {
      expect((await cni(n.node, { command: 'ADD', containerID: `g${i}`, netns: p.path }, n.conf())).code).toBe(0);
    }
    const gc = await cni(n.node, { command: 'GC' }, n.conf('1.1.0', { [key]: [{ containerID: 'g1', ifname: 'eth0' }] }));
    expect(gc.code, gc.stdout).toBe(0);
    expect(n.reservations()).toEqual(['10.244.1.3']);
    expect(n.vethsOnNode()).toHaveLength(1);
    expect(linkNames(pods[0]!.ns)).toEqual(['lo']);
    expect((await cni(n.node, { command: 'GC' }, n.conf('1.0.0'))).json.code).toBe(1);
  });

  it('honours IP= and MAC= in CNI_ARGS (podman --ip/--mac-address) with IgnoreUnknown', async () => {
    const n = makeNode();
    const p = pod();
    const args = 'IgnoreUnknown=1;K8S_POD_NAME=web;K8S_POD_NAMESPACE=default;IP=10.244.1.77;MAC=02:aa:bb:cc:dd:ee';
    const r = await cni(n.node, { command: 'ADD', containerID: 'pm', netns: p.path, args }, n.conf());
    expect(r.code, r.stdout).toBe(0);
    expect(r.json.ips[0].address).toBe('10.244.1.77/24');
    expect(links(p.ns).find((l) => l.ifname === 'eth0')!.address).toBe('02:aa:bb:cc:dd:ee');
    // the log line names the pod, so an operator can grep for it
    const logged = readFileSync(join(n.dir, 'podwire.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((l) => l.outcome === 'ok' && l.containerID === 'pm');
    expect(logged).toMatchObject({ pod: 'web', podNamespace: 'default', ips: ['10.244.1.77/24'] });
    const taken = await cni(n.node, { command: 'ADD', containerID: 'pm2', netns: pod().path, args }, n.conf());
    expect(taken.json).toMatchObject({ code: 101, msg: expect.stringContaining('already allocated') });
    const unknown = await cni(n.node, { command: 'ADD', containerID: 'pm3', netns: pod().path, args: 'K8S_POD_NAME=x' }, n.conf());
    expect(unknown.json).toMatchObject({ code: 2, msg: expect.stringContaining('K8S_POD_NAME') });
    expect(n.reservations()).toEqual(['10.244.1.77']);
  });

  it('honours runtimeConfig.ips and runtimeConfig.mac', async () => {
    const n = makeNode();
    const p = pod();
    const r = await cni(
      n.node,
      { command: 'ADD', containerID: 'rc', netns: p.path },
      n.conf('1.0.0', { runtimeConfig: { ips: ['10.244.1.50/24'], mac: '02:00:00:00:00:50' } }),
    );
    expect(r.code, r.stdout).toBe(0);
    expect(r.json.ips[0].address).toBe('10.244.1.50/24');
    expect(r.json.interfaces[2].mac).toBe('02:00:00:00:00:50');
  });

  it('takes the slice and MTU from the node subnet file; a missing file is "try again later"', async () => {
    const n = makeNode();
    const file = join(n.dir, 'subnet.json');
    const conf = n.conf('1.1.0');
    conf.ipam = { type: 'podwire-ipam', subnetFile: file, dataDir: join(n.dir, 'ipam') } as any;
    const p = pod();
    const missing = await cni(n.node, { command: 'ADD', containerID: 'sf', netns: p.path }, conf);
    expect(missing.json.code).toBe(11);
    sh('sh', ['-c', `echo '{"podCIDR":"10.244.3.0/24","clusterCIDR":"10.244.0.0/16","mtu":1450}' > ${file}`]);
    const r = await cni(n.node, { command: 'ADD', containerID: 'sf', netns: p.path }, conf);
    expect(r.code, r.stdout).toBe(0);
    expect(r.json.ips[0].address).toBe('10.244.3.2/24');
    expect(links(p.ns).find((l) => l.ifname === 'eth0')!.mtu).toBe(1450);
    expect(links(n.node).find((l) => l.ifname === 'cni0')!.mtu).toBe(1450);
  });

  it.each(['iptables', 'nftables'])('ipMasq adds the pod to the masquerade (%s) and DEL removes it', async (backend) => {
    const n = makeNode({}, { ipMasq: true, firewallBackend: backend });
    const p = pod();
    const r = await cni(n.node, { command: 'ADD', containerID: 'mq', netns: p.path }, n.conf());
    expect(r.code, r.stdout).toBe(0);
    const nat = () => sh('ip', ['netns', 'exec', n.node, 'iptables', '-t', 'nat', '-S']);
    const nft = () => sh('ip', ['netns', 'exec', n.node, 'sh', '-c', 'nft list table inet podwire 2>/dev/null || true']);
    if (backend === 'iptables') {
      expect(nat()).toMatch(/-A POSTROUTING -s 10\.244\.1\.2\/32 .*-j PW-MASQ-/);
      expect(nat()).toMatch(/-A PW-MASQ-\w+ -j MASQUERADE|! -d 224\.0\.0\.0\/4 -j MASQUERADE/);
      expect(nft()).toBe('');
    } else {
      // Elements, not rules: the pod in masq4, and its own subnet exempt in masqown4, both naming their owner.
      expect(nft()).toMatch(/set masq4 \{[^}]*elements = \{ 10\.244\.1\.2 comment "[0-9a-f]{16} mq\/eth0" \}/);
      expect(nft()).toMatch(/10\.244\.1\.2 \. 10\.244\.1\.0\/24 comment "[0-9a-f]{16} mq\/eth0"/);
      expect(nat()).not.toContain('PW-MASQ');
    }
    expect((await cni(n.node, { command: 'DEL', containerID: 'mq', netns: p.path }, n.conf('1.1.0', { prevResult: r.json }))).code).toBe(0);
    expect(nat()).not.toContain('PW-MASQ');
    expect(nft()).not.toContain('10.244.1.2');
  });

  it('CHECK reports what is missing', async () => {
    const n = makeNode();
    const p = pod();
    const r = await cni(n.node, { command: 'ADD', containerID: 'ck', netns: p.path }, n.conf());
    const conf = n.conf('1.1.0', { prevResult: r.json });
    const call = { command: 'CHECK', containerID: 'ck', netns: p.path };
    expect((await cni(n.node, call, conf)).code).toBe(0);
    sh('ip', ['-n', n.node, 'link', 'set', 'dev', r.json.interfaces[1].name, 'nomaster']);
    expect((await cni(n.node, call, conf)).json.msg).toContain('not attached to cni0');
    sh('ip', ['-n', n.node, 'link', 'set', 'dev', r.json.interfaces[1].name, 'master', 'cni0']);
    expect((await cni(n.node, call, conf)).code).toBe(0);
    sh('ip', ['-n', p.ns, 'route', 'del', 'default']);
    expect((await cni(n.node, call, conf)).json.msg).toContain('route 0.0.0.0/0 via 10.244.1.1 is missing');
    sh('ip', ['-n', p.ns, 'addr', 'flush', 'dev', 'eth0']);
    expect((await cni(n.node, call, conf)).json.msg).toContain('address 10.244.1.2/24 is missing');
    sh('rm', [join(n.dir, 'ipam', 'podnet', '10.244.1.2')]);
    expect((await cni(n.node, call, conf)).json.msg).toContain('no IP address is reserved');
    sh('ip', ['-n', p.ns, 'link', 'del', 'eth0']);
    expect((await cni(n.node, call, conf)).json.code).not.toBe(0);
    expect((await cni(n.node, { ...call, command: 'CHECK' }, n.conf())).json).toMatchObject({
      code: 7,
      msg: expect.stringContaining('prevResult'),
    });
  });

  it('writes one log line per call to the log file and nothing but JSON to stdout', async () => {
    const n = makeNode();
    const p = pod();
    const add = await cni(n.node, { command: 'ADD', containerID: 'lg', netns: p.path }, n.conf('1.0.0', { logLevel: 'info' }));
    await cni(n.node, { command: 'DEL', containerID: 'lg', netns: p.path }, n.conf('1.0.0', { logLevel: 'info' }));
    expect(() => JSON.parse(add.stdout)).not.toThrow();
    expect(add.stdout.trim().split('\n')).toHaveLength(1);
    const lines = readFileSync(join(n.dir, 'podwire.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.cmd, l.containerID, l.ifname, l.outcome])).toEqual([
      ['ADD', 'lg', 'eth0', 'ok'],
      ['DEL', 'lg', 'eth0', 'ok'],
    ]);
    expect(typeof lines[0].ms).toBe('number');
  });
});

describe('bad input gets the right code and changes nothing', () => {
  const cases: [string, (c: any) => any, Record<string, any>, number, string][] = [
    ['malformed JSON', () => '{"cniVersion": "1.0.0",', {}, 6, 'decode'],
    ['missing CNI_CONTAINERID', (c) => c, { env: { CNI_CONTAINERID: undefined } }, 4, 'CNI_CONTAINERID'],
    ['missing CNI_IFNAME', (c) => c, { env: { CNI_IFNAME: undefined } }, 4, 'CNI_IFNAME'],
    ['container ID ../../x', (c) => c, { containerID: '../../x' }, 4, 'CNI_CONTAINERID'],
    ['ifname with a slash', (c) => c, { ifname: 'eth0/../../x' }, 4, 'CNI_IFNAME'],
    ['ifname too long', (c) => c, { ifname: 'averyveryverylongname' }, 4, 'CNI_IFNAME'],
    ['relative netns', (c) => c, { netns: 'run/netns/x' }, 4, 'CNI_NETNS'],
    ['netns that does not exist', (c) => c, { netns: '/run/netns/podwire-absent' }, 4, 'CNI_NETNS'],
    ['unknown command', (c) => c, { command: 'BOOM' }, 4, 'CNI_COMMAND'],
    ['network name ../x', (c) => ({ ...c, name: '../x' }), {}, 7, 'name'],
    ['unsupported cniVersion', (c) => ({ ...c, cniVersion: '0.2.0' }), {}, 1, 'cniVersion'],
    ['subnet with host bits', (c) => ({ ...c, ipam: { ...c.ipam, subnet: '10.244.1.7/24' } }), {}, 7, 'ipam.subnet'],
    ['bad IP= in CNI_ARGS', (c) => c, { args: 'IP=10.244.1.300' }, 4, 'CNI_ARGS'],
    ['IPAM plugin not in CNI_PATH', (c) => ({ ...c, ipam: { ...c.ipam, type: 'nonexistent-ipam' } }), {}, 7, 'ipam.type'],
  ];
  it.each(cases)('%s', async (_name, mutate, call, code, word) => {
    const n = makeNode();
    const p = pod();
    const r = await cni(n.node, { command: 'ADD', containerID: 'bad1', netns: p.path, ifname: 'eth0', ...call }, mutate(n.conf('1.0.0')));
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code, msg: expect.stringContaining(word) });
    expect(Object.keys(r.json).sort()).toEqual(['cniVersion', 'code', 'details', 'msg']);
    expect(n.reservations()).toEqual([]);
    expect(linkNames(n.node)).toEqual(['lo']);
    expect(linkNames(p.ns)).toEqual(['lo']);
  });

  it('works with the JIT off in its environment (libc calls need it: node:fs instead)', async () => {
    const n = makeNode();
    const p = pod();
    const call = { containerID: 'nojit', netns: p.path, ifname: 'eth0', env: { BUN_JSC_useJIT: '0' } };
    const add = await cni(n.node, { ...call, command: 'ADD' }, n.conf());
    expect(add.code, add.stdout).toBe(0);
    expect(n.reservations()).toEqual([addrOf(add.json)]);
    expect(linkNames(p.ns)).toContain('eth0');
    const del = await cni(n.node, { ...call, command: 'DEL' }, n.conf());
    expect(del.code, del.stdout).toBe(0);
    n.expectNothingLeft(p.ns);
  });

  it('VERSION answers without a config', async () => {
    const n = makeNode();
    const r = await cni(n.node, { command: 'VERSION' }, '');
    expect(r.json).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });
});

describe('IPAM both ways', () => {
  it('the reference bridge plugin with podwire-ipam', async () => {
    const n = makeNode();
    const bin = box.dir();
    symlinkSync(BIN, join(bin, 'podwire-ipam'));
    const p = pod();
    const conf = { ...n.conf('1.0.0'), type: 'bridge', isGateway: true };
    const call = { containerID: 'ref', netns: p.path, path: `${bin}:${REF_PLUGINS}` };
    const r = await cni(n.node, { ...call, command: 'ADD' }, conf, join(REF_PLUGINS, 'bridge'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.ips[0].address).toBe('10.244.1.2/24');
    expect(n.reservations()).toEqual(['10.244.1.2']);
    expect(ping(p.ns, '10.244.1.1')).toBe(true);
    const d = await cni(n.node, { ...call, command: 'DEL' }, conf, join(REF_PLUGINS, 'bridge'));
    expect(d.code, d.stdout).toBe(0);
    expect(n.reservations()).toEqual([]);
  });

  it('podwire delegating to host-local, which is released when ADD fails later', async () => {
    const n = makeNode();
    const hl = (more = {}) => ({
      ...n.conf('1.0.0'),
      ipam: { type: 'host-local', subnet: '10.244.5.0/24', dataDir: join(n.dir, 'hl'), ...more },
    });
    const hostLocalIPs = () => readdirSync(join(n.dir, 'hl', 'podnet')).filter((f) => IP_FILE.test(f));
    const p = pod();
    const r = await cni(n.node, { command: 'ADD', containerID: 'hl', netns: p.path }, hl());
    expect(r.code, r.stdout).toBe(0);
    expect(r.json.ips[0].address).toBe('10.244.5.2/24');
    expect(ping(p.ns, '10.244.5.1')).toBe(true);
    expect(hostLocalIPs()).toEqual(['10.244.5.2']);
    expect((await cni(n.node, { command: 'DEL', containerID: 'hl', netns: p.path }, hl())).code).toBe(0);
    expect(hostLocalIPs()).toEqual([]);
    // a failure after host-local allocated: podwire calls its DEL
    const bad = await cni(
      n.node,
      { command: 'ADD', containerID: 'hl2', netns: p.path },
      hl({ routes: [{ dst: '192.0.2.0/24', gw: '198.51.100.1' }] }),
    );
    expect(bad.code).toBe(1);
    expect(hostLocalIPs()).toEqual([]);
    expect(n.vethsOnNode()).toEqual([]);
  });
});

describe('a delegated IPAM that returns no address', () => {
  it('is an error, and podwire calls its DEL and leaves no veth', async () => {
    const n = makeNode();
    const bin = box.dir();
    const calls = join(bin, 'calls');
    // A stand-in IPAM plugin: answers ADD with a result without ips, records every verb it is called with.
    writeFileSync(join(bin, 'empty-ipam'), `#!/bin/sh\necho "$CNI_COMMAND" >> ${calls}\necho '{"cniVersion":"1.0.0"}'\n`, { mode: 0o755 });
    const p = pod();
    const conf = { ...n.conf('1.0.0'), ipam: { type: 'empty-ipam' } };
    const r = await cni(n.node, { command: 'ADD', containerID: 'empty', netns: p.path, path: bin }, conf);
    expect(r.json, r.stdout + r.stderr).toMatchObject({ code: 104, msg: expect.stringContaining('no IP address') });
    expect(readFileSync(calls, 'utf8').split('\n').filter(Boolean)).toEqual(['ADD', 'DEL']);
    n.expectNothingLeft(p.ns);
  });
});

describe('cni-conf/', () => {
  it('10-podwire.conflist: podwire then portmap, DEL in reverse leaves no rule and no IP', async () => {
    const n = makeNode();
    const list = loadConflist('10-podwire.conflist', (pl) => {
      if (pl.type === 'podwire')
        Object.assign(pl, { logFile: join(n.dir, 'podwire.log'), ipam: { ...pl.ipam, dataDir: join(n.dir, 'ipam') } });
    });
    const p = pod();
    const call = { containerID: 'cl', netns: p.path };
    const rc = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] };
    const r = await addList(n.node, list, call, rc);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.ips[0].address).toBe('10.244.1.2/24');
    expect(sh('ip', ['netns', 'exec', n.node, 'iptables-save', '-t', 'nat'])).toMatch(/--dport 8080 .*10\.244\.1\.2:80/);
    const dels = await delList(n.node, list, call, r.json, rc);
    expect(dels.map((d) => d.code)).toEqual([0, 0]);
    expect(sh('ip', ['netns', 'exec', n.node, 'iptables-save', '-t', 'nat'])).not.toContain('10.244.1.2');
    expect(n.reservations()).toEqual([]);
  });

  it('podwire-subnetfile.conflist reads the node subnet file', async () => {
    const n = makeNode();
    const file = join(n.dir, 'subnet.json');
    sh('sh', ['-c', `echo '{"podCIDR":"10.244.4.0/24"}' > ${file}`]);
    const list = loadConflist('podwire-subnetfile.conflist', (pl) => {
      if (pl.type === 'podwire')
        Object.assign(pl, { logFile: join(n.dir, 'podwire.log'), ipam: { ...pl.ipam, subnetFile: file, dataDir: join(n.dir, 'ipam') } });
    });
    const p = pod();
    const r = await addList(n.node, list, { containerID: 'sf', netns: p.path });
    expect(r.code, r.stdout).toBe(0);
    expect(r.json.ips[0].address).toBe('10.244.4.2/24');
    expect(ping(p.ns, '10.244.4.1')).toBe(true);
  });
});

describe('namespace paths', () => {
  it('works with /proc/PID/ns/net (containerd ctr) as well as a named namespace', async () => {
    const n = makeNode();
    const p = pod();
    const holder = (await import('node:child_process')).spawn('ip', ['netns', 'exec', p.ns, 'sleep', '60'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const pid = sh('pgrep', ['-n', '-f', `^sleep 60$`]).trim();
      const netns = `/proc/${pid}/ns/net`;
      const r = await cni(n.node, { command: 'ADD', containerID: 'procns', netns }, n.conf());
      expect(r.code, r.stdout).toBe(0);
      expect(r.json.interfaces[2].sandbox).toBe(netns);
      expect(ping(p.ns, '10.244.1.1')).toBe(true);
      const check = await cni(n.node, { command: 'CHECK', containerID: 'procns', netns }, n.conf('1.1.0', { prevResult: r.json }));
      expect(check.code, check.stdout).toBe(0);
      expect((await cni(n.node, { command: 'DEL', containerID: 'procns', netns: '' }, n.conf())).code).toBe(0);
      expect(linkNames(p.ns)).toEqual(['lo']);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});

describe('IPv6', () => {
  it('a v6 slice: address, default route and reachability of the gateway and another pod', async () => {
    const n = makeNode({ subnet: 'fd00:10:244:1::/64' });
    const [a, b] = [pod(), pod()];
    const ra = await cni(n.node, { command: 'ADD', containerID: 'v6a', netns: a.path }, n.conf());
    const rb = await cni(n.node, { command: 'ADD', containerID: 'v6b', netns: b.path }, n.conf());
    expect(ra.code, ra.stdout).toBe(0);
    expect(ra.json.ips[0]).toMatchObject({ address: 'fd00:10:244:1::2/64', gateway: 'fd00:10:244:1::1' });
    expect(ra.json.routes).toEqual([{ dst: '::/0', gw: 'fd00:10:244:1::1' }]);
    expect(n.reservations()).toEqual(['fd00:10:244:1::2', 'fd00:10:244:1::3']);
    expect(ping(a.ns, 'fd00:10:244:1::1')).toBe(true);
    expect(ping(a.ns, addrOf(rb.json))).toBe(true);
    const check = await cni(n.node, { command: 'CHECK', containerID: 'v6a', netns: a.path }, n.conf('1.1.0', { prevResult: ra.json }));
    expect(check.code, check.stdout).toBe(0);
    for (const [id, p] of [
      ['v6a', a],
      ['v6b', b],
    ] as const) {
      expect((await cni(n.node, { command: 'DEL', containerID: id, netns: p.path }, n.conf())).code).toBe(0);
    }
    n.expectNothingLeft(a.ns);
  });
});
