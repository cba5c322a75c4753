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


describe('podwire lab', () => {
  it('wires pods with the real plugin, proves they reach each other, and removes everything', async () => {
    const r = await lab('--pods-per-node', '3');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('all pings answered');
    expect(r.stdout.match(/ ok$/gm)).toHaveLength(9); // 3 pods x (2 pods + gateway)
    expect(r.stdout).toMatch(/pod1\s+node1\s+10\.244\.1\.\d+\s+veth[0-9a-f]{8}/);
    expect(r.stderr).toContain('no address left reserved');
    expect(labNamespaces()).toEqual([]);
    expect(existsSync('/run/podwire-lab')).toBe(false);
  });

  it('--keep leaves it up for exploring, and lab-down removes it', async () => {
    try {
      const r = await lab('--pods-per-node', '1', '--keep');
      expect(r.code, r.stderr).toBe(0);
      expect(labNamespaces().length).toBe(2);
    } finally {
      sh(BIN, ['lab-down']);
    }
    expect(labNamespaces()).toEqual([]);
  });
});
