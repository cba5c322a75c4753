// The plugin's verbs against a fake kernel (test/helpers/fake-kernel.ts): every command ADD and DEL run,
// as text, and what a failure half-way takes back. No root, no namespace, no process: the plan is checked
// as a plan — which batches, in which order, how many processes — and its rollback step by step. The same
// verbs against the real kernel: test/integration/plugin.test.ts and trace.test.ts.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CniError } from '../../src/cni/errors.js';
import { parseNetConf } from '../../src/cni/skel.js';
import type { Context, Result } from '../../src/cni/types.js';
import { attachmentNames } from '../../src/kernel/names.js';
import { bridgePlugin } from '../../src/plugin/bridge.js';
import { FakeKernel } from '../helpers/fake-kernel.js';

let k: FakeKernel;
let restore: () => void;
let dir: string;
beforeEach(() => {
  k = new FakeKernel();
  restore = k.install();
  dir = mkdtempSync(join(tmpdir(), 'podwire-plan-'));
});
afterEach(() => {
  restore();
  rmSync(dir, { recursive: true, force: true });
});

const NAMES = attachmentNames('podnet', 'ctr1', 'eth0');

function ctx(command: string, netns: string, extra: Record<string, unknown> = {}, containerID = 'ctr1'): Context {
  const conf = parseNetConf(
    JSON.stringify({
      cniVersion: '1.1.0',
      name: 'podnet',
      type: 'podwire',
      // The pod's binding to its port is one more nft transaction (test/integration/spoof.test.ts proves
      // it); here the plan around it, the same with or without nft on this machine's PATH.
      spoofChecks: false,
      ...extra,
      ipam: { type: 'podwire-ipam', subnet: '10.244.1.0/24', dataDir: dir },
    }),
  );
  return { env: { command, containerID, netns, ifname: 'eth0', args: {}, path: [] }, conf, stdin: '' };
}

const reserved = () => (existsSync(join(dir, 'podnet')) ? readdirSync(join(dir, 'podnet')).filter((f) => /^\d/.test(f)) : []);
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as CniError,
  );

describe('ADD as a plan, against a fake kernel', () => {
  it("a node's first pod: the node checked, the veth made, the bridge made when master says it is missing, the pod wired", async () => {
    const netns = k.pod('pod1');
    const r = await bridgePlugin.add(ctx('ADD', netns));
    expect(r.ips).toEqual([{ address: '10.244.1.2/24', gateway: '10.244.1.1', interface: 2 }]);
    const v = NAMES.hostVeth;
    expect(k.text()).toBe(
      [
        'host$ ip -j -d -batch -',
        '  addr show',
        '  route show default',
        'host$ ip -batch -',
        `  link add name ${v} address ${NAMES.hostMac} mtu 1500 type veth peer name eth0 address ${NAMES.podMac} mtu 1500 netns ${netns}`,
        `  link set dev ${v} master cni0 up`,
        `  link set dev ${v} type bridge_slave hairpin on`,
        '  addr replace 10.244.1.1/24 dev cni0',
        '  link set dev cni0 up',
        'host$ ip -batch -',
        '  link add name cni0 address 0a:58:0a:f4:01:01 mtu 1500 type bridge',
        '  addr replace 10.244.1.1/24 dev cni0',
        '  link set dev cni0 up',
        `  link set dev ${v} master cni0 up`,
        `  link set dev ${v} type bridge_slave hairpin on`,
        'pod1$ ip -batch -',
        '  link set dev lo up',
        '  addr add 10.244.1.2/24 dev eth0',
        '  link set dev eth0 up',
        '  route replace 0.0.0.0/0 via 10.244.1.1 dev eth0',
        '  neigh replace 10.244.1.1 dev eth0 use',
      ].join('\n'),
    );
    expect(k.sysctls.get('/proc/sys/net/ipv4/ip_forward')).toBe('1');
    expect(k.links.get('host')!.get(v)).toEqual({ kind: 'veth', master: 'cni0' });
    expect(reserved()).toEqual(['10.244.1.2']);
  });

  it('the next pod: two processes, the host batch and the pod batch; nothing read first', async () => {
    await bridgePlugin.add(ctx('ADD', k.pod('pod1')));
    const before = k.calls.length;
    await bridgePlugin.add(ctx('ADD', k.pod('pod2'), {}, 'ctr2'));
    expect(k.calls.slice(before).map((c) => `${c.ns}$ ${c.argv}`)).toEqual(['host$ ip -batch -', 'pod2$ ip -batch -']);
    expect(reserved()).toEqual(['10.244.1.2', '10.244.1.3']);
  });

  it('the pod side refused: the veth and the address are taken back, the error is the kernel’s, nothing is left', async () => {
    await bridgePlugin.add(ctx('ADD', k.pod('warm'), {}, 'warm')); // the bridge exists
    const netns = k.pod('pod1');
    k.refusals.push({ ns: 'pod1', match: /^route replace/, stderr: 'Error: Nexthop has invalid gateway.' });
    const before = k.calls.length;
    const e = await failure(bridgePlugin.add(ctx('ADD', netns)));
    expect(e?.message).toContain('route replace 0.0.0.0/0 via 10.244.1.1 dev eth0');
    expect(k.text(before).split('\n').slice(-2)).toEqual(['host$ ip -batch -', `  link del dev ${NAMES.hostVeth}`]);
    expect(k.links.get('host')!.has(NAMES.hostVeth)).toBe(false);
    expect(k.links.get('pod1')!.has('eth0')).toBe(false);
    expect(reserved()).toEqual(['10.244.1.2']); // the warm pod's only
  });

  it('hostPorts on nftables: one transaction beside the pod batch; refused pod side: the elements go too', async () => {
    const withPorts = {
      firewallBackend: 'nftables',
      runtimeConfig: { portMappings: [{ hostPort: 8081, containerPort: 8080, protocol: 'tcp' }] },
    };
    await bridgePlugin.add(ctx('ADD', k.pod('pod1'), withPorts));
    const elements = [...k.nft];
    expect(elements).toEqual([
      'inet podwire hostports4 { tcp . 8081 }',
      'inet podwire hairpin4 { 10.244.1.0/24 . 10.244.1.2 . tcp . 8080 }',
    ]);
    expect(k.calls.filter((c) => c.argv.startsWith('nft')).length).toBe(1); // one transaction, for every family

    k.refusals.push({ ns: 'pod2', match: /^addr add/, stderr: 'RTNETLINK answers: Permission denied' });
    const other = { ...withPorts, runtimeConfig: { portMappings: [{ hostPort: 8082, containerPort: 8080, protocol: 'tcp' }] } };
    const e = await failure(bridgePlugin.add(ctx('ADD', k.pod('pod2'), other, 'ctr2')));
    expect(e).toBeInstanceOf(Error);
    expect([...k.nft]).toEqual(elements); // pod2's element added, then removed: only pod1's is left
    expect(reserved()).toEqual(['10.244.1.2']);
  });

  it("a host veth of that name exists (an ADD never deleted): refused, and someone else's veth is never deleted", async () => {
    const netns = k.pod('pod1');
    k.links.get('host')!.set('cni0', { kind: 'bridge' });
    k.links.get('host')!.set(NAMES.hostVeth, { kind: 'veth', master: 'cni0' });
    const e = await failure(bridgePlugin.add(ctx('ADD', netns)));
    expect(e?.code).toBe(102);
    expect(e?.message).toContain(`host interface ${NAMES.hostVeth} already exists`);
    expect(k.calls.some((c) => c.lines.some((l) => l.startsWith('link del')))).toBe(false);
    expect(k.links.get('host')!.has(NAMES.hostVeth)).toBe(true);
    expect(reserved()).toEqual([]);
  });

  it('the "bridge" is some other kind of link: refused before anything is made', async () => {
    k.links.get('host')!.set('cni0', { kind: 'other' });
    const e = await failure(bridgePlugin.add(ctx('ADD', k.pod('pod1'))));
    expect(e?.code).toBe(7);
    expect(e?.message).toContain('cni0 exists and is not a bridge');
    // The guard's read, and nothing else: the host's `ip`, started before the config was read, was told nothing.
    expect(k.calls.filter((c) => c.lines.length).map((c) => c.argv)).toEqual(['ip -j -d -batch -']);
    expect(reserved()).toEqual([]);
  });

  it('a link that the guard saw as a bridge but master refuses (EOPNOTSUPP) is told as not a bridge, and the veth taken back', async () => {
    await bridgePlugin.add(ctx('ADD', k.pod('warm'), {}, 'warm'));
    k.refusals.push({ match: / master cni0 /, stderr: 'RTNETLINK answers: Operation not supported' });
    const e = await failure(bridgePlugin.add(ctx('ADD', k.pod('pod1'))));
    expect(e?.message).toContain('cni0 exists and is not a bridge');
    expect(k.links.get('host')!.has(NAMES.hostVeth)).toBe(false);
    expect(reserved()).toEqual(['10.244.1.2']);
  });
});

describe('DEL against a fake kernel', () => {
  it('one ip for the veth, one nft for the elements, the address released; again: nothing to do, no failure', async () => {
    const withPorts = {
      firewallBackend: 'nftables',
      runtimeConfig: { portMappings: [{ hostPort: 8081, containerPort: 8080, protocol: 'tcp' }] },
    };
    const netns = k.pod('pod1');
    const r: Result = await bridgePlugin.add(ctx('ADD', netns, withPorts));
    const before = k.calls.length;
    await bridgePlugin.del(ctx('DEL', netns, { ...withPorts, prevResult: r }));
    expect(k.calls.slice(before).map((c) => `${c.ns}$ ${c.argv}`)).toEqual(['host$ ip -force -batch -', 'host$ nft -f -']);
    expect(k.nft.size).toBe(0);
    expect(reserved()).toEqual([]);
    await bridgePlugin.del(ctx('DEL', netns, { ...withPorts, prevResult: r }));
  });
});
