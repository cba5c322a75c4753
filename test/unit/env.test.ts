import { describe, expect, it } from 'vitest';
import { parseCniArgs, readEnv } from '../../src/cni/env.js';
import { CniError, asCniError } from '../../src/cni/errors.js';
import { validID, validNetnsPath } from '../../src/cni/validate.js';
import { validIfname } from '../../src/kernel/names.js';
import { validMac } from '../../src/net/mac.js';
import { thrownCode } from '../helpers/errors.js';

const base = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/var/run/netns/x',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin:/usr/lib/cni',
};

describe('validators', () => {
  it('container IDs and network names', () => {
    for (const ok of ['a', 'abc-123_x.y', 'k8s_POD_x', '0']) expect(validID(ok)).toBe(true);
    for (const bad of ['', '../../x', '.hidden', '-x', 'a/b', 'a b', 'a\nb', 'x'.repeat(1025), 7]) expect(validID(bad)).toBe(false);
  });

  it('interface names', () => {
    for (const ok of ['eth0', 'net1', 'a'.repeat(15), 'x.y']) expect(validIfname(ok)).toBe(true);
    for (const bad of ['', '.', '..', 'a'.repeat(16), 'eth/0', 'eth:0', 'eth 0', 'eth\t0']) expect(validIfname(bad)).toBe(false);
  });

  it('netns paths and MACs', () => {
    expect(validNetnsPath('/proc/1234/ns/net')).toBe(true);
    expect(validNetnsPath('/var/run/netns/cni-1')).toBe(true);
    for (const bad of ['relative/x', '/a b', '/a"b', '/a\nb', '']) expect(validNetnsPath(bad)).toBe(false);
    expect(validMac('02:42:ac:11:00:02')).toBe(true);
    expect(validMac('01:00:5e:00:00:01')).toBe(false); // multicast
    expect(validMac('02:42:ac:11:00')).toBe(false);
  });
});

describe('readEnv', () => {
  it('reads a valid ADD environment', () => {
    const e = readEnv({ ...base, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.244.1.9' }, ['IP', 'MAC']);
    expect(e).toMatchObject({ command: 'ADD', containerID: 'abc123', ifname: 'eth0', path: ['/opt/cni/bin', '/usr/lib/cni'] });
    expect(e.args.IP).toBe('10.244.1.9');
  });

  it.each(['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'])('ADD without %s is code 4 naming it', (name) => {
    const env: Record<string, string | undefined> = { ...base };
    delete env[name];
    try {
      readEnv(env, []);
      expect.unreachable();
    } catch (e) {
      expect((e as CniError).code).toBe(4);
      expect((e as CniError).message).toContain(name);
    }
  });

  it('DEL accepts an empty CNI_NETNS (containerd ctr sends one)', () => {
    expect(readEnv({ ...base, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, []).netns).toBe('');
  });

  it('rejects unsafe values with code 4', () => {
    expect(thrownCode(() => readEnv({ ...base, CNI_CONTAINERID: '../../x' }, []))).toBe(4);
    expect(thrownCode(() => readEnv({ ...base, CNI_IFNAME: 'eth0/../../x' }, []))).toBe(4);
    expect(thrownCode(() => readEnv({ ...base, CNI_NETNS: 'netns/x' }, []))).toBe(4);
    expect(thrownCode(() => readEnv({ ...base, CNI_COMMAND: 'ADDX' }, []))).toBe(4);
  });

  it('GC and STATUS need no attachment variables', () => {
    expect(readEnv({ CNI_COMMAND: 'GC' }, []).containerID).toBe('');
    expect(readEnv({ CNI_COMMAND: 'STATUS', CNI_CONTAINERID: '../bad' }, []).containerID).toBe('');
  });
});

describe('CNI_ARGS', () => {
  it('unknown keys are code 2 unless IgnoreUnknown', () => {
    expect(thrownCode(() => parseCniArgs('K8S_POD_NAME=x', ['IP']))).toBe(2);
    expect(parseCniArgs('IgnoreUnknown=true;K8S_POD_NAME=x', ['IP'])).toEqual({ IgnoreUnknown: 'true', K8S_POD_NAME: 'x' });
    expect(thrownCode(() => parseCniArgs('IP', ['IP']))).toBe(4);
    expect(parseCniArgs('', [])).toEqual({});
  });
});

describe('errors', () => {
  it('renders the spec error shape', () => {
    expect(new CniError(7, 'bad', 'why').toJSON('1.0.0')).toEqual({ cniVersion: '1.0.0', code: 7, msg: 'bad', details: 'why' });
  });
  it('maps system errors to code 5 and anything else to 999', () => {
    const io = Object.assign(new Error('EACCES: denied'), { code: 'EACCES', syscall: 'open' });
    expect(asCniError(io).code).toBe(5);
    expect(asCniError(new Error('boom')).code).toBe(999);
    expect(asCniError('s').message).toBe('s');
  });
});
