// The lab is the main job: run it as `npm run lab` runs it, and check it proves what it says and cleans up.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { labNamespaces } from '../../src/lab/netns.js';
import { BIN, requireRoot, sh } from '../helpers/netns.js';

beforeAll(requireRoot);

function lab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, ['lab', ...args], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}


/** "passed/failed" of one proof in the lab's summary table. */
function tally(out: string, proof: string): string {
  const m = new RegExp(`^${proof}\\s+(\\d+)\\s+(\\d+)$`, 'm').exec(out);
  return m ? `${m[1]}/${m[2]}` : 'missing';
}

describe('podwire lab (3 nodes, 2 pods each, as npm run lab runs it)', () => {
  it.each(['vxlan', 'host-gw', 'auto'])('--mode %s: proves the pod network and removes everything', async (mode) => {
    const r = await lab('--mode', mode, '--nodes', '3', '--pods-per-node', '2');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('pod network works: every check passed');
    expect(tally(r.stdout, 'pod to pod')).toBe('30/0'); // 6 pods x 5 others
    expect(tally(r.stdout, 'node to remote pod')).toBe('6/0');
    expect(tally(r.stdout, 'full pod MTU, DF set')).toBe('6/0');
    expect(tally(r.stdout, 'travels in VXLAN')).toBe('3/0');
    expect(r.stdout).toMatch(/pod2\s+node3\s+10\.244\.3\.\d+\s+veth[0-9a-f]{8}/);
    const backends = [...r.stdout.matchAll(/^(node\d)\s+(node\d)\s+(vxlan|host-gw)\s/gm)].map((m) => `${m[1]}>${m[2]}:${m[3]}`);
    const expected = {
      vxlan: ['node1>node2:vxlan', 'node1>node3:vxlan', 'node2>node1:vxlan', 'node2>node3:vxlan', 'node3>node1:vxlan', 'node3>node2:vxlan'],
      'host-gw': ['node1>node2:host-gw', 'node1>node3:host-gw', 'node2>node1:host-gw', 'node2>node3:host-gw', 'node3>node1:host-gw', 'node3>node2:host-gw'],
      // node3 sits behind the lab's router: reached by VXLAN, while node1 and node2 share a subnet.
      auto: ['node1>node2:host-gw', 'node1>node3:vxlan', 'node2>node1:host-gw', 'node2>node3:vxlan', 'node3>node1:vxlan', 'node3>node2:vxlan'],
    }[mode];
    expect(backends).toEqual(expected);
    expect(r.stdout).toMatch(mode === 'host-gw' ? /^node1\s+192\.168\.50\.11\s+10\.244\.1\.0\/24\s+-\s+1500$/m : /^node1\s+192\.168\.50\.11\s+10\.244\.1\.0\/24\s+0e:70:c0:a8:32:0b\s+1450$/m);
    expect(r.stderr).toContain('no address left reserved');
    expect(labNamespaces()).toEqual([]);
    expect(existsSync('/run/podwire-lab')).toBe(false);
  });

  it('--keep leaves it up for exploring, and lab-down removes it', async () => {
    try {
      const r = await lab('--nodes', '2', '--pods-per-node', '1', '--keep');
      expect(r.code, r.stderr).toBe(0);
      expect(labNamespaces().sort()).toEqual(['pwlab-n1-pod1', 'pwlab-n2-pod1', 'pwlab-node1', 'pwlab-node2', 'pwlab-underlay']);
    } finally {
      sh(BIN, ['lab-down']);
    }
    expect(labNamespaces()).toEqual([]);
  });
});
