// The fake API server (test/helpers/fake-apiserver.mjs), which the agent's tests stand on, held to what a
// real client nobody here wrote expects of it: kubectl, the one on PATH (npm test installs Debian's
// kubernetes-client where there is none). Discovery, get -o json, a watch, annotate and patch.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeApiServer, fakeApiServer, kubeNode, kubeconfigYaml } from '../helpers/fake-apiserver.mjs';

const dir = mkdtempSync(join(tmpdir(), 'podwire-kubectl-'));
let api: FakeApiServer;
const kubeconfig = join(dir, 'kubeconfig');

beforeAll(async () => {
  api = fakeApiServer({
    nodes: [kubeNode('node1', '192.168.50.11', '10.244.1.0/24'), kubeNode('node2', '192.168.50.12', '10.244.2.0/24')],
  });
  await api.listen(0, '127.0.0.1');
  writeFileSync(kubeconfig, kubeconfigYaml(api.url));
});
afterAll(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

/** kubectl with the fake server's kubeconfig and a cache dir of its own (discovery is cached on disk). */
function kubectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'kubectl',
      ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args],
      { timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('kubectl against the fake API server', () => {
  it('discovers the API and lists nodes as JSON', async () => {
    const r = await kubectl('get', 'nodes', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout);
    expect(list.kind).toBe('List');
    expect(list.items.map((n: { metadata: { name: string } }) => n.metadata.name).sort()).toEqual(['node1', 'node2']);
    expect(list.items[0].spec.podCIDRs).toEqual([list.items[0].spec.podCIDR]);
    // The short name from discovery works too.
    const one = await kubectl('get', 'no', 'node2', '-o', 'jsonpath={.status.addresses[0].address}');
    expect(one.stdout).toBe('192.168.50.12');
  });

  it('watches: a node added after the watch began is printed', async () => {
    const child = spawn('kubectl', [
      '--kubeconfig',
      kubeconfig,
      '--cache-dir',
      join(dir, 'cache'),
      'get',
      'nodes',
      '--watch',
      '-o',
      'name',
    ]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await expect.poll(() => out, { timeout: 15_000 }).toContain('node/node2');
      api.add(kubeNode('node3', '192.168.50.13', '10.244.3.0/24'));
      await expect.poll(() => out, { timeout: 15_000 }).toContain('node/node3');
    } finally {
      child.kill();
    }
  });

  it('annotates and patches a node, and the server keeps what it was told', async () => {
    const a = await kubectl('annotate', 'node', 'node1', 'example.com/owner=lab');
    expect(a.code, a.stderr).toBe(0);
    expect(api.node('node1')!.metadata!.annotations!['example.com/owner']).toBe('lab');
    const p = await kubectl('patch', 'node', 'node1', '-p', '{"metadata":{"labels":{"lab":"yes"}},"spec":{"unschedulable":true}}');
    expect(p.code, p.stderr).toBe(0);
    expect(api.node('node1')!.metadata!.labels).toMatchObject({ lab: 'yes', 'kubernetes.io/hostname': 'node1' });
    expect(api.node('node1')!.spec!.unschedulable).toBe(true);
    expect(api.node('node1')!.spec!.podCIDR).toBe('10.244.1.0/24'); // merged, not replaced
    const m = await kubectl('patch', 'node', 'node1', '--type', 'merge', '-p', '{"metadata":{"annotations":{"example.com/owner":null}}}');
    expect(m.code, m.stderr).toBe(0);
    expect(api.node('node1')!.metadata!.annotations!['example.com/owner']).toBeUndefined();
    // What the server refuses, kubectl reports (a JSON patch is not served here).
    const j = await kubectl('patch', 'node', 'node1', '--type', 'json', '-p', '[{"op":"remove","path":"/spec/unschedulable"}]');
    expect(j.code).not.toBe(0);
    expect(j.stderr).toMatch(/unknown format|UnsupportedMediaType|415/i);
  });
});
