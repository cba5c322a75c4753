// The allocator as pure logic over the in-memory store.
import { describe, expect, it } from 'vitest';
import { IN_FLIGHT_MS, allocate, collect, freeCount, holdings, reclaimStale, release } from '../../src/ipam/allocator.js';
import { type Pool, parseIpamConfig } from '../../src/ipam/config.js';
import { formatIP } from '../../src/net/ip.js';
import { MemoryStore } from '../helpers/memory-store.js';

const pool = (ipam: Record<string, unknown>): Pool => parseIpamConfig(ipam).pools[0]!;
const owner = (n: number | string, ifname = 'eth0') => ({ containerID: `c${n}`, ifname });
const ipOf = (s: MemoryStore, p: Pool, n: number | string) => formatIP(allocate(s, p, owner(n)).ip);

describe('allocate', () => {
  it('hands out a /29 from .2 to .6: never network, gateway or broadcast; then code 100', async () => {
    const s = new MemoryStore();
    const p = pool({ subnet: '10.244.1.0/29' });
    const got = [];
    for (let i = 0; i < 5; i++) got.push(ipOf(s, p, i));
    expect(got).toEqual(['10.244.1.2', '10.244.1.3', '10.244.1.4', '10.244.1.5', '10.244.1.6']);
    expect(freeCount(s, p)).toBe(0n);
    expect(() => allocate(s, p, owner(9))).toThrow(expect.objectContaining({ code: 100 }));
  });

  it('skips a gateway placed inside the range', async () => {
    const s = new MemoryStore();
    const p = pool({ subnet: '10.0.0.0/29', gateway: '10.0.0.3' });
    const got = [];
    for (let i = 0; i < 4; i++) got.push(ipOf(s, p, i));
    expect(got).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.4', '10.0.0.5']);
    expect(got).not.toContain('10.0.0.3');
  });

  it('goes round-robin: a released address is not reused at once', async () => {
    const s = new MemoryStore();
    const p = pool({ subnet: '10.244.1.0/24' });
    const a = ipOf(s, p, 'a');
    ipOf(s, p, 'b');
    release(s, owner('a'));
    expect(ipOf(s, p, 'c')).toBe('10.244.1.4');
    expect(a).toBe('10.244.1.2');
  });

  it('wraps around to the start of the range when the end is reached', async () => {
    const s = new MemoryStore();
    const p = pool({ subnet: '10.244.1.0/24', rangeStart: '10.244.1.10', rangeEnd: '10.244.1.12' });
    expect([ipOf(s, p, 1), ipOf(s, p, 2), ipOf(s, p, 3)]).toEqual(['10.244.1.10', '10.244.1.11', '10.244.1.12']);
    release(s, owner(1));
    expect(ipOf(s, p, 4)).toBe('10.244.1.10');
  });

  it('returns the same address for a repeated ADD of the same container and ifname', async () => {
    const s = new MemoryStore();
    const p = pool({ subnet: '10.244.1.0/24' });
    const first = allocate(s, p, owner(1));
    const again = allocate(s, p, owner(1));
    expect(again).toEqual({ ip: first.ip, existing: true });
    expect(first.existing).toBe(false);
    expect(formatIP(allocate(s, p, owner(1, 'net1')).ip)).not.toBe(formatIP(first.ip));
    expect(s.ips.size).toBe(2);
  });

  it('honours a requested address and refuses a taken or outside one with code 101', async () => {
    const s = new MemoryStore();
    const p = pool({ subnet: '10.244.1.0/24' });
    const req = { family: 4 as const, value: (10n << 24n) + (244n << 16n) + (1n << 8n) + 77n };
    expect(formatIP(allocate(s, p, owner(1), req).ip)).toBe('10.244.1.77');
    expect(() => allocate(s, p, owner(2), req)).toThrow(
      expect.objectContaining({ code: 101, message: expect.stringContaining('c1/eth0') }),
    );
    expect(() => allocate(s, p, owner(3), { family: 4, value: req.value + 1000n })).toThrow(expect.objectContaining({ code: 101 }));
    expect(() => allocate(s, p, owner(4), p.gateway)).toThrow(expect.objectContaining({ code: 101 }));
  });

  it('without a lock or a read of the others: an address another allocator holds is tried, found taken, and skipped', () => {
    const s = new MemoryStore();
    const p = pool({ subnet: '10.244.1.0/29' });
    // What parallel ADDs in other processes did, without this one's round-robin position moving.
    s.ips.set('10.244.1.2', owner('other'));
    s.ips.set('10.244.1.3', owner('other2'));
    s.list = () => {
      throw new Error('ADD reads no other reservation');
    };
    expect(ipOf(s, p, 'me')).toBe('10.244.1.4');
    expect(s.ips.get('10.244.1.2')).toEqual(owner('other'));
  });

  it('works for IPv6 (no broadcast: the last address is usable)', async () => {
    const s = new MemoryStore();
    const p = pool({ subnet: 'fd00:10:244:1::/126' });
    expect(formatIP(p.gateway)).toBe('fd00:10:244:1::1');
    expect([ipOf(s, p, 1), ipOf(s, p, 2)]).toEqual(['fd00:10:244:1::2', 'fd00:10:244:1::3']);
    expect(() => allocate(s, p, owner(3))).toThrow(expect.objectContaining({ code: 100 }));
  });
});

describe('release, collect, holdings', () => {
  it('release frees every address of one owner only, and twice is fine', async () => {
    const s = new MemoryStore();
    const p = pool({ subnet: '10.244.1.0/24' });
    ipOf(s, p, 1);
    ipOf(s, p, 2);
    expect(release(s, owner(1))).toEqual(['10.244.1.2']);
    expect(release(s, owner(1))).toEqual([]);
    expect(holdings(s, owner(2))).toEqual(['10.244.1.3']);
  });

  it('collect keeps valid attachments and frees the rest', async () => {
    const s = new MemoryStore();
    const p = pool({ subnet: '10.244.1.0/24' });
    for (const i of [1, 2, 3]) ipOf(s, p, i);
    const freed = await collect(s, [owner(2)]);
    expect([...freed.keys()].sort()).toEqual(['10.244.1.2', '10.244.1.4']);
    expect([...freed.values()].map((o) => o.containerID).sort()).toEqual(['c1', 'c3']);
    expect([...s.ips.keys()]).toEqual(['10.244.1.3']);
  });
});

describe('reclaimStale (the slice is full)', () => {
  const full = () => {
    const s = new MemoryStore();
    const p = pool({ subnet: '10.244.1.0/29' });
    for (let i = 0; i < 5; i++) ipOf(s, p, i); // .2 .. .6
    return { s, p };
  };
  const OLD = IN_FLIGHT_MS + 1000;

  it("takes an earlier boot's reservations without asking anyone, and no others", async () => {
    const { s, p } = full();
    s.from.set('10.244.1.2', { boot: 'earlier', ageMs: 5 });
    s.from.set('10.244.1.3', { boot: 'earlier', ageMs: OLD });
    const asked: string[] = [];
    const done = await reclaimStale(s, async (owners) => owners.map((o) => void asked.push(o.containerID)));
    expect(done.map((r) => [r.ip, r.owner.containerID])).toEqual([
      ['10.244.1.2', 'c0'],
      ['10.244.1.3', 'c1'],
    ]);
    expect(done[0]!.why).toMatch(/earlier boot/);
    expect(asked).toEqual([]); // this boot's are all young: maybe ADDs in flight, not even judged
    expect(freeCount(s, p)).toBe(2n);
    expect(s.reclaimed).toEqual(done);
    expect(s.earlierBootsForgotten).toBe(1);
  });

  it('takes an old reservation whose pod is gone; keeps live ones, young ones (in flight) and unknown ones nobody can check', async () => {
    const { s } = full();
    s.from.set('10.244.1.2', { boot: 'this', ageMs: OLD }); // gone
    s.from.set('10.244.1.3', { boot: 'this', ageMs: OLD }); // alive
    s.from.set('10.244.1.4', { boot: 'this', ageMs: 10 }); // in flight: its veth does not exist yet
    s.from.set('10.244.1.5', { boot: 'unknown', ageMs: OLD }); // made before boots were recorded: gone
    const asked: string[] = [];
    const done = await reclaimStale(s, async (owners) =>
      owners.map((o) => (asked.push(o.containerID), ['c0', 'c3'].includes(o.containerID) ? 'its host veth is gone' : undefined)),
    );
    expect(asked).toEqual(['c0', 'c1', 'c3']); // c4 (.6) is young
    expect(done.map((r) => r.ip)).toEqual(['10.244.1.2', '10.244.1.5']);
    expect([...s.ips.keys()].sort()).toEqual(['10.244.1.3', '10.244.1.4', '10.244.1.6']);
    // without a check (podwire-ipam under another plugin) only earlier boots go
    s.from.set('10.244.1.3', { boot: 'unknown', ageMs: OLD });
    expect(await reclaimStale(s)).toEqual([]);
  });

  it('counts only what it released: a reservation released meanwhile by a late DEL is not reclaimed twice', async () => {
    const { s } = full();
    s.from.set('10.244.1.2', { boot: 'earlier', ageMs: OLD });
    const releaseIfHeld = s.releaseIfHeld.bind(s);
    s.releaseIfHeld = (ip, o) => (s.release(ip), releaseIfHeld(ip, o)); // the DEL wins the race
    expect(await reclaimStale(s)).toEqual([]);
    expect(s.reclaimed).toEqual([]);
  });
});

describe('cleanup before release (GC and reclaim)', () => {
  it('cleans up after each owner once, while its addresses are still reserved, then releases them', async () => {
    const s = new MemoryStore();
    const v4 = pool({ subnet: '10.244.1.0/24' });
    const v6 = pool({ subnet: 'fd00:10:244:1::/64' });
    for (const i of [1, 2]) {
      allocate(s, v4, owner(i), undefined, 0);
      allocate(s, v6, owner(i), undefined, 1);
    }
    const seen: string[][] = [];
    await collect(s, [owner(2)], async (owners) => {
      seen.push(owners.map((o) => o.containerID));
      expect(holdings(s, owner(1))).toHaveLength(2); // not released yet
    });
    expect(seen).toEqual([['c1']]);
    expect(holdings(s, owner(1))).toEqual([]);
  });

  it('a cleanup that fails releases nothing: the reservations stay for a later try', async () => {
    const s = new MemoryStore();
    const p = pool({ subnet: '10.244.1.0/29' });
    for (let i = 0; i < 5; i++) ipOf(s, p, i);
    const fail = async () => {
      throw new Error('iptables-restore: locked');
    };
    await expect(collect(s, [], fail)).rejects.toThrow(/locked/);
    expect(s.ips.size).toBe(5);
    s.from.set('10.244.1.2', { boot: 'earlier', ageMs: 5 });
    await expect(reclaimStale(s, undefined, fail)).rejects.toThrow(/locked/);
    expect(s.ips.get('10.244.1.2')).toEqual(owner(0));
    expect(s.reclaimed).toEqual([]);
  });
});
