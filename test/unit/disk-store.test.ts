// The disk store and its lock, on a real disk and with real processes.
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  statSync,
  rmSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { allocate } from '../../src/ipam/allocator.js';
import { type Pool, parseIpamConfig } from '../../src/ipam/config.js';
import { DiskStore, currentBoot } from '../../src/ipam/disk-store.js';
import { lockFile } from '../../src/ipam/lock.js';
import { formatIP } from '../../src/net/ip.js';

const root = mkdtempSync(join(tmpdir(), 'podwire-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => DiskStore.forNetwork(root, `net${n++}`);

/** Exit code of `flock -n FILE true` in another process: 0 = the lock was free, 1 = held. */
function probe(file: string): Promise<number> {
  return new Promise((resolve) => spawn('flock', ['-n', file, 'true']).on('close', (c) => resolve(c ?? -1)));
}

describe('DiskStore', () => {
  it("writes host-local's layout", async () => {
    const s = fresh();
    const pool = parseIpamConfig({ subnet: '10.244.1.0/24' }).pools[0]!;
    allocate(s, pool, { containerID: 'abc', ifname: 'eth0' });
    expect(readFileSync(join(s.dir, '10.244.1.2'), 'utf8')).toBe('abc\r\neth0');
    expect(readFileSync(join(s.dir, 'last_reserved_ip.0'), 'utf8')).toBe('10.244.1.2');
    // No lock file: ADD takes none (GC does, and host-local makes its own). The owner index is a symlink.
    // The boot record is a second name of the same file, in this boot's directory.
    const names = readdirSync(s.dir).sort();
    expect(names).toEqual([
      `.boot-${currentBoot()}`,
      expect.stringMatching(/^\.owner-[0-9a-f]{24}-4$/),
      '10.244.1.2',
      'last_reserved_ip.0',
    ]);
    expect(readlinkSync(join(s.dir, names[1]!))).toBe('10.244.1.2');
    expect(statSync(join(s.dir, names[0]!, '10.244.1.2')).ino).toBe(statSync(join(s.dir, '10.244.1.2')).ino);
    expect(readdirSync(join(s.dir, names[0]!))).toEqual(['10.244.1.2']);
  });

  it('knows which boot a reservation was made in; after a reboot, it is an earlier one', () => {
    const s = fresh();
    const a = { containerID: 'a', ifname: 'eth0' };
    s.reserve('10.0.0.5', a);
    expect(currentBoot()).toMatch(/^[0-9a-f-]{36}$/);
    expect(s.provenance('10.0.0.5')).toMatchObject({ boot: 'this' });
    expect(s.provenance('10.0.0.5')!.ageMs).toBeLessThan(5000);
    // A reboot, as the disk sees it: the boot directory is another boot's.
    renameSync(join(s.dir, `.boot-${currentBoot()}`), join(s.dir, '.boot-00000000-0000-0000-0000-000000000000'));
    expect(s.provenance('10.0.0.5')).toMatchObject({ boot: 'earlier' });
    // One made before boots were recorded (an older podwire, host-local): unknown, never "earlier".
    writeFileSync(join(s.dir, '10.0.0.6'), 'h\r\neth0');
    expect(s.provenance('10.0.0.6')).toMatchObject({ boot: 'unknown' });
    expect(s.provenance('10.0.0.7')).toBeUndefined();
    // Released in an earlier boot's terms: both names go; the earlier boot's directory goes once forgotten.
    expect(s.releaseIfHeld('10.0.0.5', a)).toBe(true);
    expect(s.list().has('10.0.0.5')).toBe(false);
    s.forgetEarlierBoots();
    expect(readdirSync(s.dir).filter((n) => n.startsWith('.boot-'))).toEqual([]);
    // DEL of this boot's reservation removes its boot record too.
    s.reserve('10.0.0.8', a);
    s.release('10.0.0.8', a);
    expect(readdirSync(join(s.dir, `.boot-${currentBoot()}`))).toEqual([]);
  });

  it('releaseIfHeld releases nothing that another owner holds by now, and puts it back', () => {
    const s = fresh();
    s.reserve('10.0.0.5', { containerID: 'new', ifname: 'eth0' });
    expect(s.releaseIfHeld('10.0.0.5', { containerID: 'old', ifname: 'eth0' })).toBe(false);
    expect(s.list().get('10.0.0.5')).toEqual({ containerID: 'new', ifname: 'eth0' });
    expect(s.provenance('10.0.0.5')).toMatchObject({ boot: 'this' }); // still the same file
    expect(s.releaseIfHeld('10.0.0.9', { containerID: 'old', ifname: 'eth0' })).toBe(false); // nothing there
    expect(readdirSync(s.dir).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('keeps a record of reclaims: a count and the last ones', () => {
    const s = fresh();
    expect(s.reclaims()).toEqual({ count: 0, last: [] });
    mkdirSync(s.dir, { recursive: true });
    for (let i = 0; i < 25; i++) s.recordReclaims([{ ip: `10.0.0.${i}`, owner: { containerID: `c${i}`, ifname: 'eth0' }, why: 'test' }]);
    const r = s.reclaims();
    expect(r.count).toBe(25);
    expect(r.last).toHaveLength(20);
    expect(r.last.at(-1)).toMatchObject({ ip: '10.0.0.24', owner: { containerID: 'c24' }, why: 'test', at: expect.any(String) });
  });

  it('reads files written by host-local, old format (ID only) included', () => {
    const s = fresh();
    mkdirSync(s.dir, { recursive: true });
    writeFileSync(join(s.dir, '10.0.0.5'), 'x1\r\nnet1');
    writeFileSync(join(s.dir, '10.0.0.6'), 'x2\n');
    writeFileSync(join(s.dir, 'fd00::7'), 'x3\r\neth0');
    expect(s.list()).toEqual(
      new Map([
        ['10.0.0.5', { containerID: 'x1', ifname: 'net1' }],
        ['10.0.0.6', { containerID: 'x2', ifname: '' }],
        ['fd00::7', { containerID: 'x3', ifname: 'eth0' }],
      ]),
    );
  });

  it('reserve is exclusive, release idempotent, a crashed writer leaves no partial reservation', () => {
    const s = fresh();
    mkdirSync(s.dir, { recursive: true });
    // What a crash between write and link leaves, two minutes ago; and a writer that is at it right now.
    const crashed = join(s.dir, '.tmp-10.0.0.9-4242');
    const inFlight = join(s.dir, '.tmp-10.0.0.10-4343');
    writeFileSync(crashed, 'half');
    writeFileSync(inFlight, 'c\r\neth0');
    const old = new Date(Date.now() - 120_000);
    utimesSync(crashed, old, old);
    expect(s.reserve('10.0.0.9', { containerID: 'a', ifname: 'eth0' })).toBe(true);
    expect(s.reserve('10.0.0.9', { containerID: 'b', ifname: 'eth0' })).toBe(false);
    expect(s.list().get('10.0.0.9')).toEqual({ containerID: 'a', ifname: 'eth0' });
    expect(existsSync(crashed)).toBe(false);
    expect(existsSync(inFlight)).toBe(true); // a live writer's temp file is left alone
    expect(s.list(false).has('10.0.0.10')).toBe(false); // and is no reservation
    s.release('10.0.0.9', { containerID: 'a', ifname: 'eth0' });
    s.release('10.0.0.9', { containerID: 'a', ifname: 'eth0' });
    expect(s.list().size).toBe(0);
    expect(s.lastReserved()).toBe('10.0.0.9');
  });

  it('the owner index finds what an owner holds, and is trusted only while the reservation is still its own', () => {
    const s = fresh();
    const a = { containerID: 'a', ifname: 'eth0' };
    const b = { containerID: 'b', ifname: 'eth0' };
    expect(s.heldBy(a, 4)).toBeUndefined();
    expect(s.reserve('10.0.0.5', a)).toBe(true);
    expect(s.reserve('fd00::5', a)).toBe(true);
    expect(s.heldBy(a, 4)).toBe('10.0.0.5');
    expect(s.heldBy(a, 6)).toBe('fd00::5');
    expect(s.heldBy({ containerID: 'a', ifname: 'net1' }, 4)).toBeUndefined();
    // The reservation goes behind the index's back (a crash, host-local) and another owner takes the address.
    unlinkSync(join(s.dir, '10.0.0.5'));
    expect(s.reserve('10.0.0.5', b)).toBe(true);
    expect(s.heldBy(a, 4)).toBeUndefined();
    expect(s.heldBy(b, 4)).toBe('10.0.0.5');
    // Release removes the owner's index entry with the reservation.
    s.release('10.0.0.5', b);
    expect(s.heldBy(b, 4)).toBeUndefined();
    expect(readdirSync(s.dir).filter((n) => n.startsWith('.owner-'))).toHaveLength(2); // a's two (one stale), none of b's
  });

  it('keeps round-robin per slice: last_reserved_ip.0 and .1, as host-local numbers its range sets', () => {
    const s = fresh();
    const [v4, v6] = parseIpamConfig({ ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64' }]] }).pools as [Pool, Pool];
    const a = { containerID: 'a', ifname: 'eth0' };
    allocate(s, v4, a, undefined, 0);
    allocate(s, v6, a, undefined, 1);
    expect(readFileSync(join(s.dir, 'last_reserved_ip.0'), 'utf8')).toBe('10.244.1.2');
    expect(readFileSync(join(s.dir, 'last_reserved_ip.1'), 'utf8')).toBe('fd00:10:244:1::2');
    expect([s.heldBy(a, 4), s.heldBy(a, 6)]).toEqual(['10.244.1.2', 'fd00:10:244:1::2']);
  });

  it('list of a network never used is empty', () => {
    expect(fresh().list().size).toBe(0);
  });
});

describe('lockFile (flock on an inherited descriptor)', () => {
  it('is held against other processes until unlocked', async () => {
    const f = join(root, 'lock1');
    const unlock = await lockFile(f);
    expect(await probe(f)).toBe(1);
    unlock();
    unlock(); // a second unlock is harmless
    expect(await probe(f)).toBe(0);
  });

  it('serialises holders in one process', async () => {
    const f = join(root, 'lock2');
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const unlock = await lockFile(f);
        inside++;
        maxInside = Math.max(maxInside, inside);
        await new Promise((r) => setTimeout(r, 5));
        inside--;
        unlock();
      }),
    );
    expect(maxInside).toBe(1);
  });

  it('times out with code 11 while another process holds it, and is free once that process is killed', async () => {
    const f = join(root, 'lock3');
    const holder = spawn('flock', ['--close', f, 'sleep', '30'], { stdio: 'ignore', detached: true });
    try {
      for (let i = 0; i < 100 && (await probe(f)) === 0; i++) await new Promise((r) => setTimeout(r, 20));
      await expect(lockFile(f, 1)).rejects.toMatchObject({ code: 11 });
      holder.kill('SIGKILL'); // a crash: nobody unlocks, the kernel drops the lock (--close: sleep does not hold it)
      await new Promise((r) => holder.on('close', r));
      const unlock = await lockFile(f, 5);
      unlock();
    } finally {
      process.kill(-holder.pid!, 'SIGKILL'); // and its sleep
    }
  });
});

describe('DiskStore.keep (a repeated ADD)', () => {
  it("makes the owner's reservation this boot's and new again, the same file; refuses another owner's", () => {
    const s = fresh();
    const a = { containerID: 'a', ifname: 'eth0' };
    s.reserve('10.0.0.5', a);
    // What a reboot and a while leave: an earlier boot's record, and an old file.
    renameSync(join(s.dir, `.boot-${currentBoot()}`), join(s.dir, '.boot-00000000-0000-0000-0000-000000000000'));
    const old = new Date(Date.now() - 600_000);
    utimesSync(join(s.dir, '10.0.0.5'), old, old);
    const ino = statSync(join(s.dir, '10.0.0.5')).ino;
    expect(s.provenance('10.0.0.5')).toMatchObject({ boot: 'earlier' });

    expect(s.keep('10.0.0.5', a)).toBe(true);
    expect(s.provenance('10.0.0.5')).toMatchObject({ boot: 'this' });
    expect(s.provenance('10.0.0.5')!.ageMs).toBeLessThan(5000);
    expect(statSync(join(s.dir, '10.0.0.5')).ino).toBe(ino);
    expect(s.keep('10.0.0.5', { containerID: 'b', ifname: 'eth0' })).toBe(false);
    expect(s.keep('10.0.0.9', a)).toBe(false);
    expect(readdirSync(join(s.dir, `.boot-${currentBoot()}`)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('allocate keeps a repeated ADD on its address and protects it from reclaiming', async () => {
    const s = fresh();
    const pool = parseIpamConfig({ subnet: '10.0.0.0/29' }).pools[0]!;
    const a = { containerID: 'a', ifname: 'eth0' };
    expect(formatIP(allocate(s, pool, a).ip)).toBe('10.0.0.2');
    renameSync(join(s.dir, `.boot-${currentBoot()}`), join(s.dir, '.boot-00000000-0000-0000-0000-000000000000'));
    expect(allocate(s, pool, a)).toMatchObject({ existing: true });
    expect(s.provenance('10.0.0.2')).toMatchObject({ boot: 'this' });
  });
});
