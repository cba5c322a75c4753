// The agent's pure parts: the conflist it installs from a template, the iptables commands it runs, and the
// status it serves (health, readiness, metrics) as its loop reports progress.
import { afterEach, describe, expect, it } from 'vitest';
import { iptablesCmd, useIptablesBackend } from '../../src/firewall/iptables.js';
import { createServer } from 'node:http';
import { AgentStatus, serveStatus, summary } from '../../src/node/agent-status.js';
import { apiAuthorizer } from '../../src/node/metrics-auth.js';
import { AgentError, agentConflist } from '../../src/node/kube-agent.js';
import type { SyncReport } from '../../src/node/sync.js';
import type { Following } from '../../src/node/informer.js';

describe('the installed conflist', () => {
  it('is the bundled one by default, its podwire plugin reading the subnet file', () => {
    const c = JSON.parse(agentConflist('/run/podwire/subnet.json'));
    expect(c.plugins).toHaveLength(1);
    expect(c.plugins[0]).toMatchObject({
      type: 'podwire',
      capabilities: { portMappings: true },
      ipam: { type: 'podwire-ipam', subnetFile: '/run/podwire/subnet.json' },
    });
  });

  it('follows a template (a ConfigMap): plugins chained after podwire are kept as written', () => {
    const template = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'podnet',
      plugins: [
        { type: 'podwire', mtu: 1400, ipam: { subnet: 'ignored' } },
        { type: 'bandwidth', capabilities: { bandwidth: true } },
      ],
    });
    const c = JSON.parse(agentConflist('/s.json', template));
    expect(c.plugins[0]).toEqual({ type: 'podwire', mtu: 1400, ipam: { subnet: 'ignored', type: 'podwire-ipam', subnetFile: '/s.json' } });
    expect(c.plugins[1]).toEqual({ type: 'bandwidth', capabilities: { bandwidth: true } });
  });

  it.each([
    ['{"cniVersion": "1.0.0", "name": ', /not JSON/],
    ['[1, 2]', /not a network configuration list/],
    ['{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}]}', /exactly one plugin of type podwire \(found 0\)/],
    ['{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "podwire"}, {"type": "podwire"}]}', /found 2/],
  ])('refuses %s with a message that says why', (template, why) => {
    expect(() => agentConflist('/s.json', template)).toThrow(AgentError);
    expect(() => agentConflist('/s.json', template)).toThrow(why);
  });
});

describe('iptables commands', () => {
  afterEach(() => useIptablesBackend(undefined));
  it('are the plain ones on a host, the backend-named ones once a backend is chosen', () => {
    expect([iptablesCmd('iptables'), iptablesCmd('iptables', '-save'), iptablesCmd('ip6tables', '-restore')]).toEqual([
      'iptables',
      'iptables-save',
      'ip6tables-restore',
    ]);
    useIptablesBackend('legacy');
    expect([iptablesCmd('iptables'), iptablesCmd('iptables', '-save')]).toEqual(['iptables-legacy', 'iptables-legacy-save']);
    useIptablesBackend('nft');
    expect(iptablesCmd('ip6tables', '-restore')).toBe('ip6tables-nft-restore');
  });
});

describe('the status the agent serves', () => {
  const report = (failures = 0): SyncReport => ({
    peers: [
      { name: 'a', mode: 'vxlan' },
      { name: 'b', mode: 'host-gw' },
      { name: 'c', mode: 'vxlan' },
    ] as unknown as SyncReport['peers'],
    diff: {} as SyncReport['diff'],
    changes: 3,
    failures: Array.from({ length: failures }, () => ({
      command: 'route replace 10.244.9.0/24 via 10.244.9.0',
      error: 'Nexthop has invalid gateway',
    })),
    processes: 4,
    ms: 12,
  });

  it('is not ready until set up and synced, and says what it waits for', () => {
    const s = new AgentStatus(60_000);
    expect(s.notReady()).toBe('waiting for the API server (listing nodes)');
    s.waiting("node n1's podCIDR");
    expect(s.notReady()).toBe("waiting for node n1's podCIDR");
    s.waiting(undefined);
    expect(s.notReady()).toBe('node not set up yet');
    s.nodeIsUp();
    expect(s.notReady()).toBe('no peer sync yet');
    s.synced(report(1));
    // Counted, not quoted: ip's words and the command stay in the log.
    expect(s.notReady()).toBe("last peer sync failed: 1 route/neighbour/FDB entries failed (see the agent's log)");
    s.synced(report());
    expect(s.notReady()).toBeUndefined();
    s.syncFailed(new Error('the VXLAN device podwire.1 does not exist'), 5);
    expect(s.notReady()).toBe('last peer sync failed: the VXLAN device podwire.1 does not exist');
  });

  it('is not ready while blind to the API server for more than a few seconds, and says since when and why; alive all the same', async () => {
    const s = new AgentStatus(60_000);
    s.waiting(undefined);
    s.nodeIsUp();
    s.synced(report());
    const now = Date.now();
    let nodes: Following = { up: true, since: now - 60_000, lastContact: now - 1000, listed: true };
    const pods: Following = { up: false, since: now - 10_000, cause: 'HTTP 500 InternalError', lastContact: now - 10_000, listed: true };
    s.follow('nodes', () => nodes);
    s.follow('pods', () => pods);
    expect(s.notReady(now)).toBe(
      `not following the API server since ${new Date(now - 10_000).toISOString()} (10 s): pods: HTTP 500 InternalError`,
    );
    // A watch cut a moment ago is not blindness yet: readiness does not flap on every resumed watch.
    nodes = { up: false, since: now - 500, cause: 'the watch was cut off', lastContact: now - 500, listed: true };
    expect(s.blind(now)).not.toContain('nodes');
    expect(s.blind(now + 5000)).toContain('; nodes: the watch was cut off');
    expect(s.stuck()).toBeUndefined();
    const text = await s.registry.metrics();
    expect(text).toContain('podwire_api_up{resource="nodes"} 0');
    expect(text).toContain('podwire_api_up{resource="pods"} 0');
    expect(text).toMatch(/podwire_api_last_contact_age_seconds\{resource="pods"\} (9|10|11)\./);
    s.listHeld('nodes', 'refused');
    expect(await s.registry.metrics()).toContain('podwire_api_lists_held_total{resource="nodes",outcome="refused"} 1');
  });

  it('is not ready while the NetworkPolicy table cannot be written, and counts the policies it cannot read by field', async () => {
    const s = new AgentStatus(60_000);
    s.waiting(undefined);
    s.nodeIsUp();
    s.synced(report());
    s.policyFailed(new Error('nft: Could not process rule: No such file or directory\nmore'));
    expect(s.notReady()).toBe(
      'network policy not written (the last good table stays in the kernel): nft: Could not process rule: No such file or directory',
    );
    s.policySynced({
      applied: 'full',
      ms: 3,
      compiled: { rules: 2, policies: [{}] },
      leftOut: [{ kind: 'NetworkPolicy', name: '"x"/"odd"', why: 'spec.ingress[0].ports[0].port 0 is not a port from 1 to 65535' }],
    });
    expect(s.notReady()).toBeUndefined();
    expect(await s.registry.metrics()).toContain(
      'podwire_network_policies_unreadable{namespace="x",policy="odd",field="spec.ingress[0].ports[0].port"} 1',
    );
  });

  it('says one line of at most 200 characters to whoever asks: no raw multi-line error text', async () => {
    expect(summary(`first\nsecond`)).toBe('first');
    expect(summary('x'.repeat(500))).toHaveLength(200);
    const s = new AgentStatus(60_000);
    s.waiting(undefined);
    s.nodeIsUp();
    s.synced(report());
    s.policyFailed(new Error(`nft: ${'y'.repeat(400)}\nadd element inet podwire-policy p-1-sel4 { 10.0.0.1 }`));
    const { server, port } = await serveStatus(s, '127.0.0.1', 0);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      const body = await r.text();
      expect(r.status).toBe(503);
      expect(body.trimEnd().split('\n')).toHaveLength(1);
      expect(body.trimEnd().length).toBeLessThanOrEqual(200);
      expect(body).not.toContain('add element');
    } finally {
      server.close();
    }
  });

  it('serves /metrics, with --metrics-auth, on its own listener, only to a token the API server says may get /metrics', async () => {
    // A stand-in API server: TokenReview knows two tokens; SubjectAccessReview allows one user /metrics.
    const asked: string[] = [];
    const api = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        const o = JSON.parse(body) as { kind: string; spec: { token?: string; user?: string; nonResourceAttributes?: object } };
        asked.push(o.kind);
        res.writeHead(201, { 'Content-Type': 'application/json' });
        if (o.kind === 'TokenReview') {
          const user = { prom: 'system:serviceaccount:monitoring:prometheus', pod: 'system:serviceaccount:default:app' }[
            o.spec.token ?? ''
          ];
          res.end(JSON.stringify({ status: user ? { authenticated: true, user: { username: user } } : { authenticated: false } }));
        } else {
          expect(o.spec.nonResourceAttributes).toEqual({ path: '/metrics', verb: 'get' });
          res.end(JSON.stringify({ status: { allowed: o.spec.user === 'system:serviceaccount:monitoring:prometheus' } }));
        }
      });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const apiPort = (api.address() as { port: number }).port;
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${apiPort}`, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const { ApiClient } = await import('../../src/node/api.js');
    const s = new AgentStatus(60_000);
    const { server, port } = await serveStatus(s, '127.0.0.1', 0, { metricsOnly: true, authorize: apiAuthorizer(new ApiClient(kc)) });
    const get = async (path: string, token?: string) => {
      const r = await fetch(`http://127.0.0.1:${port}${path}`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
      return { code: r.status, body: await r.text() };
    };
    try {
      expect((await get('/metrics')).code).toBe(401);
      expect((await get('/metrics', 'forged')).code).toBe(401);
      expect((await get('/metrics', 'pod')).code).toBe(403);
      const ok = await get('/metrics', 'prom');
      expect(ok.code).toBe(200);
      expect(ok.body).toContain('podwire_node_ready');
      const before = asked.length;
      expect((await get('/metrics', 'prom')).code).toBe(200); // kept a minute: the API server is not asked again
      expect(asked.length).toBe(before);
      expect((await get('/readyz')).code).toBe(404); // the probes are on the status listener, not this one
      api.close();
      api.closeAllConnections();
      expect((await get('/metrics', 'other')).code).toBe(503); // the API server cannot be asked: not allowed either
    } finally {
      server.close();
      api.close();
    }
  });

  it('is alive while its loop reports progress, stuck when it stops', async () => {
    const s = new AgentStatus(50);
    expect(s.stuck()).toBeUndefined();
    await new Promise((r) => setTimeout(r, 80));
    expect(s.stuck()).toMatch(/no progress for \d+ s/);
    s.heartbeat();
    expect(s.stuck()).toBeUndefined();
  });

  it('counts syncs, peers per backend, failures and restarts in Prometheus text', async () => {
    const s = new AgentStatus(60_000);
    s.waiting(undefined);
    s.nodeIsUp();
    s.synced(report());
    s.synced(report(2));
    s.watchRestarted();
    const text = await s.registry.metrics();
    expect(text).toContain('podwire_syncs_total{outcome="ok"} 1');
    expect(text).toContain('podwire_syncs_total{outcome="failed"} 1');
    expect(text).toContain('podwire_peers{backend="vxlan"} 2');
    expect(text).toContain('podwire_peers{backend="host-gw"} 1');
    expect(text).toContain('podwire_sync_failed_entries 2');
    expect(text).toContain('podwire_api_watch_restarts_total 1');
    expect(text).toContain('podwire_node_ready 0');
    expect(text).toMatch(/podwire_sync_duration_seconds_bucket\{le="0.025",outcome="ok"\} 1/);
  });

  it("counts the plugin's reclaims from the store's record, never backwards", async () => {
    const s = new AgentStatus(60_000);
    const count = async () => (await s.registry.metrics()).match(/^podwire_reservations_reclaimed_total (\d+)$/m)?.[1];
    expect(await count()).toBe('0');
    s.reclaims(3);
    s.reclaims(3);
    expect(await count()).toBe('3');
    s.reclaims(5);
    s.reclaims(1); // the record was reset (a new dataDir): the counter does not go down
    expect(await count()).toBe('5');
  });
});
