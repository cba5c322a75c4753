// The lab on a host that has nft and no iptables binary (newer distributions ship it so): the same host,
// with a PATH that holds every tool but iptables, ip6tables and their kin. Every mode and family runs and
// passes its proofs (the lab counts packets with a table of its own, kube-proxy's Services are written in
// its nftables mode, and `diagram` draws them from there), NetworkPolicy included; `--proxy iptables`
// there says it needs iptables, and makes nothing.
import { spawnSync } from 'node:child_process';
import { readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labNamespaces } from '../../src/lab/netns.js';
import { BIN, ROOT, Sandbox, requireRoot } from '../helpers/netns.js';

const box = new Sandbox();
let path = '';
afterAll(() => box.cleanup());

beforeAll(() => {
  requireRoot();
  const dir = box.dir();
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    let names: string[] = [];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      if (/^(ip6?tables|xtables|ebtables|arptables)/.test(n)) continue;
      try {
        symlinkSync(join(d, n), join(dir, n));
      } catch {
        // an earlier directory of PATH has it
      }
    }
  }
  path = dir;
});

const lab = (...args: string[]) =>
  spawnSync(BIN, ['lab', '--json', '--no-trace', ...args], { encoding: 'utf8', env: { ...process.env, PATH: path }, timeout: 300_000 });

describe('the lab without iptables', () => {
  it('the stripped PATH has nft and no iptables', () => {
    expect(spawnSync('nft', ['--version'], { env: { PATH: path } }).status).toBe(0);
    expect(spawnSync('iptables', ['--version'], { env: { PATH: path } }).error).toBeDefined();
  });

  it.each([
    ['vxlan', 'dual', '2', ['--keep']],
    ['host-gw', 'ipv4', '2', ['--policy', join(ROOT, 'deploy', 'netpol-example.json')]],
    ['auto', 'ipv6', '3', []],
  ] as [string, string, string, string[]][])(
    'mode %s, %s: every proof passes, traffic counted in nftables',
    (mode, family, nodes, extra) => {
      const r = lab('--mode', mode, '--family', family, '--nodes', nodes, ...extra);
      if (extra.includes('--keep')) {
        // The picture reads the Services from kube-proxy's nftables table: each with its backend and nodePort.
        const svg = spawnSync(BIN, ['diagram', '--lab'], { encoding: 'utf8', env: { ...process.env, PATH: path } });
        // And path tells the nodePort's DNAT with the Service's ports: nodePort -> port of the Cluster IP -> targetPort.
        const walked = spawnSync(BIN, ['path', '192.168.50.250', '192.168.50.11:30080', '--lab', '--json'], {
          encoding: 'utf8',
          env: { ...process.env, PATH: path, LANG: 'C' },
        });
        labDown();
        expect(walked.status, walked.stderr).toBe(0);
        expect(JSON.parse(walked.stdout).hops.map((h: { text: string }) => h.text)).toContainEqual(
          expect.stringMatching(
            /^DNAT \(nftables ip kube-proxy .*\): 192\.168\.50\.11:30080 -> 10\.244\.\d+\.\d+:8080 \(.*\); Service lab\/[\w-]+:http: nodePort 30080 -> port 80 of Cluster IP 10\.96\.0\.\d+ -> targetPort 8080$/,
          ),
        );
        expect(svg.status, svg.stderr).toBe(0);
        const services = [...svg.stdout.matchAll(/<g data-kind="service" data-name="([^"]+)">.*?<\/g>/gs)].map((m) => m[0]);
        expect(services.length).toBeGreaterThanOrEqual(3);
        for (const g of services) expect(g).toMatch(/10\.96\.\d+\.\d+:80 → 10\.244\.\d+\.\d+:8080/);
        expect(services.some((g) => g.includes('nodePort 30080'))).toBe(true);
      }
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.ok).toBe(true);
      expect(out.failed).toEqual([]);
      // The counters were read (a number, not NaN) and show the backend's kind of packets.
      const kind = mode === 'host-gw' ? 'plainPackets' : 'vxlanPackets';
      expect(out.traffic.some((row: Record<string, number>) => row[kind]! > 0)).toBe(true);
      expect(r.stderr).toContain('kube-proxy nftables mode');
      expect(labNamespaces()).toEqual([]);
    },
    300_000,
  );

  it('--proxy iptables says it needs iptables, and makes nothing', () => {
    const r = lab('--proxy', 'iptables');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--proxy iptables writes the Services as kube-proxy does with iptables, and iptables is not installed here');
    expect(labNamespaces()).toEqual([]);
  });
});
