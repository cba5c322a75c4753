// The plugin's own log writer (src/runtime/log.ts) and pino (the CLI's and agent's, src/cli/log.ts) write the same
// lines for the same calls: same keys in the same order, same values, same levels.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configurePinoLog } from '../../src/cli/log.js';
import { type Logger, configureLog, validLogLevel } from '../../src/runtime/log.js';

const dir = mkdtempSync(join(tmpdir(), 'podwire-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The calls the plugin makes, with every kind of value it logs. */
function calls(log: Logger): void {
  log.info(
    {
      cmd: 'ADD',
      net: 'podnet',
      containerID: 'ctr1',
      ifname: 'eth0',
      netns: '/run/netns/p1',
      args: undefined,
      outcome: 'ok',
      ms: 12.34,
      ips: ['10.244.1.2/24'],
    },
    'ADD ok',
  );
  log.error({ cmd: 'ADD', outcome: 'error', code: 7, err: 'invalid network config: ipam: missing "quoted" \\ \n newline' }, 'ADD failed');
  log.debug({ netns: undefined, batch: ['link set dev lo up', 'addr add 10.244.1.2/24 dev eth0'], ms: 2.5, exit: 0 }, 'ip -batch');
  log.info({ profile: { startup: 5.1, ipam: { wall: 0.4, cpu: 0.3 } }, flag: true, none: null }, 'nested');
  log.warn({ err: new Error('boom') }, 'an Error object');
  log.info('a message alone');
  log.trace({ hidden: 1 }, 'below the level');
}

const normalise = (text: string) => text.replace(/"time":"[^"]+"/g, '"time":"T"').replace(/"stack":"(?:[^"\\]|\\.)*"/g, '"stack":"S"');

describe('log lines', () => {
  it('are the same from pino and from the plugin writer, level filter included', () => {
    const ours = join(dir, 'ours.log');
    const theirs = join(dir, 'pino', 'theirs.log'); // pino makes the directory; so must we
    calls(configureLog(join(dir, 'sub', 'ours.log'), 'debug'));
    calls(configureLog(ours, 'debug'));
    calls(configurePinoLog(theirs, 'debug'));
    const a = normalise(readFileSync(ours, 'utf8'));
    const b = normalise(readFileSync(theirs, 'utf8'));
    expect(a.split('\n').length).toBe(7); // 6 lines and the final newline: trace was filtered out
    expect(a).toBe(b);
    expect(readFileSync(join(dir, 'sub', 'ours.log'), 'utf8').split('\n')).toHaveLength(7);
    for (const line of a.trim().split('\n')) expect(JSON.parse(line).pid).toBe(process.pid);
  });

  it('level "silent" writes nothing, and the file is opened at the first line, not before', () => {
    const f = join(dir, 'silent.log');
    calls(configureLog(f, 'silent'));
    expect(existsSync(f)).toBe(false);
    const lazy = join(dir, 'lazy.log');
    const log = configureLog(lazy, 'info');
    expect(existsSync(lazy)).toBe(false);
    log.info('first');
    expect(readFileSync(lazy, 'utf8')).toContain('"msg":"first"');
  });

  it('unknown levels are refused by the config check', () => {
    expect(validLogLevel('debug')).toBe(true);
    expect(validLogLevel('verbose')).toBe(false);
  });
});
