// The trace's pure parts: where it goes, how steps are numbered and batched, and that every wiring step
// the builders produce carries a sentence and a reason.
import { describe, expect, it } from 'vitest';
import { Trace, traceTarget } from '../../src/cni/trace.js';
import { bridgeLines, podLines, vethLines } from '../../src/kernel/links.js';
import { ipCommand } from '../../src/kernel/run.js';
import { thrownCode } from '../helpers/errors.js';

describe('traceTarget', () => {
  it('PODWIRE_TRACE wins over the config; off by default', () => {
    expect(traceTarget(undefined, undefined)).toBeUndefined();
    expect(traceTarget('', false)).toBeUndefined();
    expect(traceTarget('1', undefined)).toBe('log');
    expect(traceTarget('log', 'stderr')).toBe('log');
    expect(traceTarget('stderr', undefined)).toBe('stderr');
    expect(traceTarget('0', true)).toBeUndefined();
    expect(traceTarget(undefined, true)).toBe('log');
    expect(traceTarget(undefined, 'stderr')).toBe('stderr');
  });
  it('anything else is a CNI error naming the variable or key', () => {
    expect(thrownCode(() => traceTarget('loud', undefined))).toBe(4);
    expect(() => traceTarget('loud', undefined)).toThrow(/PODWIRE_TRACE/);
    expect(thrownCode(() => traceTarget(undefined, 1))).toBe(7);
    expect(() => traceTarget(undefined, 'yes')).toThrow(/trace: must be/);
  });
});

describe('Trace', () => {
  const step = (w: string) => ({ what: w, cmd: `cmd ${w}`, why: `because ${w}` });
  it('numbers steps across batches and says which went to the kernel together', () => {
    const t = new Trace('log', 'ADD c/eth0');
    t.step(step('a'));
    t.batch([step('b'), step('c'), step('d')], 2.25);
    t.batch([step('e')], 1);
    const text = t.text('ok');
    expect(text.split('\n')[0]).toBe('podwire ADD c/eth0');
    expect(text).toMatch(
      / 4\. d\n\s+\$ cmd d\n\s+why: because d\n\s+\(steps 2-4 went to the kernel in one `ip -batch -`, 2\.3 ms\)\n\s+5\. e\n/,
    );
    expect(text).not.toMatch(/steps 5-5/);
    expect(text.trimEnd().endsWith('=> ok')).toBe(true);
    expect(t.length).toBe(5);
  });
  it('a refused line is marked FAILED and the lines after it are left out', () => {
    const t = new Trace('log', 'ADD');
    t.batch([step('b'), step('c'), step('d')], 1, 2, 'File exists');
    expect(t.length).toBe(2);
    expect(t.text('failed')).toMatch(/2\. c\n.*\n.*\n\s+FAILED: File exists\n/);
  });
});

describe('wiring steps', () => {
  const all = [
    ...bridgeLines({ name: 'cni0', mtu: 1450, gatewayCidrs: ['10.244.1.1/24'], mac: '0a:58:0a:f4:01:01' }, false),
    ...vethLines({
      host: 'veth01234567',
      hostMac: '02:00:00:00:00:01',
      peer: 'eth0',
      peerMac: '02:00:00:00:00:02',
      netns: '/run/netns/p',
      mtu: 1450,
      bridge: 'cni0',
      hairpin: true,
    }),
    ...podLines({
      ifname: 'eth0',
      addresses: ['10.244.1.5/24'],
      routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }, { dst: '10.96.0.0/12' }],
    }),
  ];
  it('every step has a command, a sentence and a reason', () => {
    expect(all).toHaveLength(11);
    for (const s of all) {
      expect(s.cmd).toMatch(/^(link|addr|route) /);
      expect(s.what.length).toBeGreaterThan(8);
      expect(s.why.length).toBeGreaterThan(30);
    }
    expect(all.map((s) => s.what)).toContain('turn hairpin on for veth01234567');
    expect(all.find((s) => s.cmd.startsWith('route replace 0.0.0.0/0'))!.what).toBe('add the default route via 10.244.1.1 (the bridge)');
    expect(all.find((s) => s.cmd.startsWith('route replace 10.96'))!.what).toBe('add the route to 10.96.0.0/12');
  });
  it('ipCommand shows a batch line as the single command that does the same', () => {
    expect(ipCommand('link set dev lo up')).toBe('ip link set dev lo up');
    expect(ipCommand('link set dev lo up', '/proc/42/ns/net')).toBe('nsenter --net=/proc/42/ns/net -- ip link set dev lo up');
  });
});
