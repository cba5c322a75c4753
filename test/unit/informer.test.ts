// The agent's informer against a stand-in API server that fails as real ones do (down, 500, 429 with
// Retry-After, lists in pages with continue tokens that expire, truncated and slow answers, empty or
// partial lists): it never stays blind for long, and never hands downstream a list that would remove most
// of what it knows until a second list confirms it. In-process: no root, no network beyond loopback.
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient, retryAfterMs } from '../../src/node/api.js';
import { Backoff, type Following, Informer, type KubeObject } from '../../src/node/informer.js';
import { type FakeApiServer, fakeApiServer, kubeNode, kubeconfigYaml } from '../helpers/fake-apiserver.mjs';
import { until } from '../helpers/wait.js';

describe('Backoff', () => {
  it('doubles from its shortest pause to its longest, each drawn from [half, whole], and starts over on reset', () => {
    const lo = new Backoff(250, 4000, () => 0);
    const hi = new Backoff(250, 4000, () => 1);
    expect(Array.from({ length: 7 }, () => lo.next())).toEqual([125, 250, 500, 1000, 2000, 2000, 2000]);
    expect(Array.from({ length: 7 }, () => hi.next())).toEqual([250, 500, 1000, 2000, 4000, 4000, 4000]);
    hi.reset();
    expect(hi.next()).toBe(250);
  });

  it("waits at least what the server's Retry-After asks, up to a minute", () => {
    const b = new Backoff(250, 4000, () => 1);
    expect(b.next(3000)).toBe(3000);
    expect(b.next(100)).toBe(500);
    expect(b.next(3_600_000)).toBe(60_000);
  });

  it('reads Retry-After in seconds or as a date', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});

describe('Informer', () => {
  let api: FakeApiServer | undefined;
  let inf: Informer<KubeObject> | undefined;
  afterEach(async () => {
    await inf?.stop();
    await api?.close();
    inf = undefined;
  });

  const NODES = ['a', 'b', 'c', 'd', 'e'].map((n, i) => kubeNode(n, `192.168.50.${11 + i}`, `10.244.${i + 1}.0/24`));

  async function start(
    o: {
      backoff?: Backoff;
      relistMs?: number;
      refuse?: (items: readonly KubeObject[], cached: readonly KubeObject[]) => string | undefined;
    } = {},
  ) {
    api = fakeApiServer({ nodes: NODES });
    await api.listen(0, '127.0.0.1');
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigYaml(api.url));
    const log = { changes: 0, errors: [] as string[], held: [] as string[], following: [] as Following[] };
    inf = new Informer<KubeObject>(new ApiClient(kc), {
      path: '/api/v1/nodes',
      resource: 'nodes',
      backoff: o.backoff ?? new Backoff(20, 200),
      confirmMs: 300,
      relistMs: o.relistMs ?? 0,
      ...(o.refuse ? { refuse: o.refuse } : {}),
      onChange: () => log.changes++,
      onError: (e) => log.errors.push(e.message),
      onHeld: (why, outcome) => log.held.push(`${outcome}: ${why}`),
      onFollowing: (f) => log.following.push(f),
    });
    inf.start();
    await inf.listed;
    return log;
  }
  const names = () =>
    inf!
      .list()
      .map((n) => n.metadata!.name)
      .sort()
      .join(',');

  it('reads a list served in pages, following continue; an expired token starts the list over', async () => {
    api = fakeApiServer({ nodes: NODES });
    api.fault({ pageSize: 2 });
    await api.listen(0, '127.0.0.1');
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigYaml(api.url));
    inf = new Informer<KubeObject>(new ApiClient(kc), { path: '/api/v1/nodes', resource: 'nodes', onChange: () => {} });
    inf.start();
    await inf.listed;
    expect(names()).toBe('a,b,c,d,e');
    expect(api.requests.filter((r) => !r.watch).length).toBe(3); // 2 + 2 + 1

    // The server's snapshot for the token expires between two pages: the list starts over, once.
    const client = new ApiClient(kc);
    const first = await client.get<{ metadata: { continue: string } }>({ path: '/api/v1/nodes', query: { limit: 2 }, timeoutMs: 5000 });
    api.fault({ expireContinue: true });
    await expect(
      client.get({ path: '/api/v1/nodes', query: { limit: 2, continue: first.metadata.continue }, timeoutMs: 5000 }),
    ).rejects.toMatchObject({ status: 410, expired: true });
    api.add(kubeNode('f', '192.168.50.16', '10.244.6.0/24'));
    api.compact(); // the watch relists; its pages' tokens are fresh
    await until(() => names() === 'a,b,c,d,e,f', 5000, 'the relist in pages');
  });

  it('is back within its longest pause of the server returning, however long it was away, and says so', async () => {
    const log = await start({ backoff: new Backoff(250, 4000) });
    expect(inf!.following()).toMatchObject({ up: true, listed: true });
    const restarted = api!.restart(7000); // down 7 s: the pauses reach their longest
    await until(() => inf!.following().up === false, 5000, 'the informer to notice');
    // The watch is cut first (connection reset), then every retry is refused.
    await until(() => inf!.following().cause === 'connection refused', 5000, 'a refused retry');
    await restarted;
    const back = api!.requests.at(-1)!.at; // '(listening again)'
    api!.add(kubeNode('f', '192.168.50.16', '10.244.6.0/24')); // made while it was away: arrives with the new watch
    await until(() => names().includes('f'), 10_000, 'the change made meanwhile');
    const first = api!.requests.find((r) => r.at >= back && r.path === '/api/v1/nodes')!;
    expect(first.at - back).toBeLessThanOrEqual(4000 + 250); // the longest pause, and a little for the event loop
    expect(inf!.following().up).toBe(true);
    // Told when it goes up or down, and when the cause changes (the cut watch, then refused connections): never twice the same.
    const told = log.following.map((f) => (f.up ? 'up' : f.cause));
    expect(told[0]).toBe('up');
    expect(told.at(-1)).toBe('up');
    expect(told).toContain('connection refused');
    expect(told.filter((x, i) => x === told[i - 1])).toEqual([]);

    // A later blip: the pauses started over once it was back, so it returns after the shortest ones.
    const blip = api!.restart(1000);
    await until(() => inf!.following().up === false, 5000, 'the blip to be noticed');
    await blip;
    const back2 = api!.requests.at(-1)!.at;
    await until(() => inf!.following().up, 5000, 'back after the blip');
    const first2 = api!.requests.find((r) => r.at >= back2 && r.path === '/api/v1/nodes')!;
    expect(first2.at - back2).toBeLessThan(2000);
  }, 30_000);

  it('500s, then 429s with Retry-After: it keeps trying, waits what the server asks, and follows again', async () => {
    const log = await start();
    api!.fault({ status: 500, ms: 600 });
    api!.dropWatches();
    await until(() => log.errors.some((e) => e.startsWith('HTTP 500')), 5000, 'a 500');
    await new Promise((r) => setTimeout(r, 700));
    api!.fault({ status: 429, retryAfter: 1, ms: 1500 });
    api!.dropWatches();
    await until(() => log.errors.some((e) => e.includes('HTTP 429 TooManyRequests') && e.includes('(Retry-After 1 s)')), 5000, 'a 429');
    api!.add(kubeNode('f', '192.168.50.16', '10.244.6.0/24'));
    await until(() => names().includes('f'), 10_000, 'the change made meanwhile');
    // After a 429 asking for 1 s, no request came sooner than that (the client's own pause is 20-200 ms).
    const tried = api!.requests.filter((r) => r.path === '/api/v1/nodes');
    const after429 = tried.findIndex((r) => r.status === 429);
    expect(tried[after429 + 1]!.at - tried[after429]!.at).toBeGreaterThanOrEqual(950);
    expect(inf!.following().up).toBe(true);
  });

  it('a truncated watch event and slow answers: it watches again from where it was, and converges', async () => {
    const log = await start();
    api!.fault({ truncate: 1 });
    api!.dropWatches();
    await until(() => log.errors.some((e) => e.startsWith('a watch event cut off')), 5000, 'the cut event');
    api!.fault({ slowMs: 1500 });
    api!.dropWatches();
    api!.remove('e');
    await until(() => names() === 'a,b,c,d', 10_000, 'the deletion through a slow watch');
    expect(log.held).toEqual([]);
  });

  it('a list that would remove most of what it knows is held back; only a second list that agrees gets through', async () => {
    const log = await start();
    const changes = log.changes;
    // One empty list (a stale or broken server), then good ones: nothing is ever removed.
    api!.fault({ emptyLists: 1 });
    api!.compact(); // 410: the informer must list again
    await until(() => log.held.length === 1, 5000, 'the empty list to be held');
    expect(log.held[0]).toBe('held: a list of nodes without 5 of the 5 known, and no DELETE events');
    expect(names()).toBe('a,b,c,d,e');
    await until(() => inf!.following().up && log.changes > changes, 5000, 'the confirming list');
    expect(names()).toBe('a,b,c,d,e');

    // Three of five gone in a relist, twice over: real, taken after the second list.
    api!.fault({ without: ['a', 'b', 'c'], times: 2 });
    api!.compact();
    await until(() => names() === 'd,e', 5000, 'the confirmed removal');
    expect(log.held.slice(1)).toEqual([
      'held: a list of nodes without 3 of the 5 known, and no DELETE events',
      'confirmed: 3 of 5 nodes removed, as a second list confirmed',
    ]);
    // A DELETE event is taken at once: it is the server saying so, not a list leaving something out.
    api!.remove('d');
    await until(() => names() === 'e', 5000, 'the deletion');
    expect(log.held.length).toBe(3);
  });

  it('a list its owner refuses (the Nodes without this node) never reaches the cache', async () => {
    const log = await start({
      refuse: (items, cached) =>
        cached.some((n) => n.metadata?.name === 'a') && !items.some((n) => n.metadata?.name === 'a') ? 'without a' : undefined,
    });
    api!.fault({ without: ['a'], times: 3 });
    api!.compact();
    await until(() => log.held.length === 3 && inf!.following().up, 10_000, 'three refusals, then a good list');
    expect(log.held).toEqual(['refused: without a', 'refused: without a', 'refused: without a']);
    expect(names()).toBe('a,b,c,d,e');
  });

  it('lists everything again on a period: a change it missed is repaired without any object changing', async () => {
    await start({ relistMs: 400 });
    api!.sneak(kubeNode('z', '192.168.50.99', '10.244.99.0/24')); // in the store, no watch event
    await until(() => names().includes('z'), 5000, 'the relist to find it');
  });
});
