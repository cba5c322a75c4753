// The trace's pure parts: where it goes, how steps are numbered and batched, and that every wiring step
// the builders produce carries a sentence and a reason.
import { describe, expect, it } from 'vitest';
import { Trace, traceTarget } from '../../src/cni/trace.js';
import { LANGS, type Msg, setLang, t } from '../../src/i18n/index.js';
import type { Step } from '../../src/kernel/step.js';
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
  // Any step id will do: the test is of numbering and batching, so each step's command names it.
  const step = (w: string): Step => ({ id: 'lo', cmd: `cmd ${w}` });
  const ok: Msg = { id: 'trace.ok', p: { command: 'ADD', ms: 3, ips: '' } };
  it('numbers steps across batches and says which went to the kernel together', async () => {
    const t = new Trace('log', { id: 'trace.title', p: { command: 'ADD', containerID: 'c', ifname: 'eth0', network: 'n', netns: '/x' } });
    t.step(step('a'));
    t.batch([step('b'), step('c'), step('d')], 2.25);
    t.batch([step('e')], 1);
    const text = await t.text(ok, 'en');
    expect(text.split('\n')[0]).toBe('podwire ADD c/eth0 (network n, netns /x)');
    expect(text).toMatch(
      / 4\. bring up loopback inside the pod\n\s+\$ cmd d\n\s+why: the containers .*\n\s+\(steps 2-4 went to the kernel in one `ip -batch -`, 2\.3 ms\)\n\s+5\. /,
    );
    expect(text).not.toMatch(/steps 5-5/);
    expect(text.trimEnd().endsWith('=> ADD ok in 3 ms')).toBe(true);
    expect(t.length).toBe(5);
  });
  it('a refused line is marked FAILED and the lines after it are left out', async () => {
    const t = new Trace('log', { id: 'ipam.fromConfig' });
    t.batch([step('b'), step('c'), step('d')], 1, 2, 'File exists');
    expect(t.length).toBe(2);
    expect(await t.text(ok, 'en')).toMatch(/2\. .*\n\s+\$ cmd c\n.*\n\s+FAILED: File exists\n/);
  });
  it('in Chinese: the same steps, commands unchanged, the words and the why from the zh catalogue', async () => {
    const t = new Trace(
      'stderr',
      { id: 'trace.title', p: { command: 'DEL', containerID: 'c', ifname: 'eth0', network: 'n', netns: '-' } },
      {
        LANG: 'zh_CN.UTF-8',
      },
    );
    t.step({ id: 'vethDel', p: { host: 'veth0', ifname: 'eth0' }, cmd: 'ip link del dev veth0' }, 'note.withHostDel');
    const text = await t.text({ id: 'trace.error', p: { command: 'DEL', code: 11, message: 'boom' } });
    expect(text).toContain(
      '1. 删除 veth 对的主机端 veth0\n       $ ip link del dev veth0\n       原因: 删除 veth 对的一端就删除了两端：Pod 的 eth0',
    );
    expect(text).toContain('(与下面主机端的步骤同时进行)');
    expect(text.trimEnd().endsWith('=> DEL 失败（错误码 11）：boom')).toBe(true);
    // PODWIRE_LANG wins over the locale
    const en = new Trace('stderr', { id: 'ipam.fromConfig' }, { LANG: 'zh_CN.UTF-8', PODWIRE_LANG: 'en' });
    en.step({ id: 'lo' });
    expect(await en.text(ok)).toContain('bring up loopback inside the pod');
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
      addresses: ['10.244.1.5/24', 'fd00:10:244:1::5/64'],
      routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }, { dst: '10.96.0.0/12' }],
    }),
  ];
  it('every step has a command, and a sentence and a reason in every language, every placeholder filled', () => {
    expect(all).toHaveLength(12);
    for (const l of LANGS) {
      setLang(l);
      for (const s of all) {
        expect(s.cmd).toMatch(/^(link|addr|route) /);
        const what = t(`step.${s.id}`, s.p);
        const why = t(`step.${s.id}.why`, s.p);
        expect(what.length, s.id).toBeGreaterThan(6);
        expect(why.length, s.id).toBeGreaterThan(20);
        expect(what + why, `${l} ${s.id}`).not.toMatch(/\{\w+\}/);
      }
    }
    setLang('en');
    const words = (s: Step) => t(`step.${s.id}`, s.p);
    expect(all.map(words)).toContain('turn hairpin on for veth01234567');
    expect(words(all.find((s) => s.cmd.startsWith('route replace 0.0.0.0/0'))!)).toBe('add the default route via 10.244.1.1 (the bridge)');
    expect(words(all.find((s) => s.cmd.startsWith('route replace 10.96'))!)).toBe('add the route to 10.96.0.0/12');
    expect(t('step.podIP.why', all.find((s) => s.cmd.includes('fd00'))!.p)).toMatch(/\/64 says .* nodad/);
  });
  it('ipCommand shows a batch line as the single command that does the same', () => {
    expect(ipCommand('link set dev lo up')).toBe('ip link set dev lo up');
    expect(ipCommand('link set dev lo up', '/proc/42/ns/net')).toBe('nsenter --net=/proc/42/ns/net -- ip link set dev lo up');
  });
});
