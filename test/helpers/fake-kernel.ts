// A fake kernel for unit tests of the plugin's plans, as kube-proxy's tests run against a fake nftables:
// every command a verb runs (through src/runtime/run.ts's seam) is recorded as text, and `ip -batch`, `ip -j`,
// `nft` are answered from a small model of each namespace's links — enough for the host side (veth, bridge,
// `master`), the pod side, the node guard's reads and nftables transactions. /proc/sys and the namespace
// files are faked through src/runtime/files.ts's seam, so nothing needs root and nothing touches this machine.
import type { RunOptions, RunResult, Started } from '../../src/runtime/run.js';
import { useRunner } from '../../src/runtime/run.js';
import { type Sys, sys, useSys } from '../../src/runtime/files.js';

export interface Call {
  /** The namespace it ran in: 'host', or a named namespace's name (`ip -n NAME`). */
  ns: string;
  /** `ip -batch`, `ip -j`, `nft -f`, ...: the tool and its first arguments, as typed. */
  argv: string;
  /** What it was given on stdin, line by line. */
  lines: string[];
}

interface Link {
  kind: 'veth' | 'bridge' | 'other';
  master?: string;
}

/** A line the fake refuses, with what ip (or nft) says, and whether ip names the line (it does not for an unknown device). */
export interface Refusal {
  ns?: string;
  match: RegExp;
  stderr: string;
  lineless?: boolean;
}

export class FakeKernel {
  readonly calls: Call[] = [];
  /** Each namespace's links; 'host' is the node's. */
  readonly links = new Map<string, Map<string, Link>>([
    [
      'host',
      new Map([
        ['lo', { kind: 'other' }],
        ['eth0', { kind: 'other' }],
      ]),
    ],
  ]);
  readonly sysctls = new Map<string, string>([
    ['/proc/sys/net/ipv4/ip_forward', '0\n'],
    ['/proc/sys/net/ipv6/conf/all/forwarding', '0\n'],
  ]);
  readonly refusals: Refusal[] = [];
  /** nftables elements added and not deleted, by set and key: "inet podwire hostports4 { tcp . 8081 }". */
  readonly nft = new Set<string>();

  /** A pod namespace, as a runtime makes it: /run/netns/NAME with lo. */
  pod(name: string): string {
    this.links.set(name, new Map([['lo', { kind: 'other' }]]));
    return `/run/netns/${name}`;
  }

  install(): () => void {
    const real = sys();
    const fake: Sys = {
      ...real,
      readText: (p) => (this.sysctls.has(p) ? this.sysctls.get(p) : p === '/proc/net/dev' ? this.procNetDev() : real.readText(p)),
      writeText: (p, t) => (p.startsWith('/proc/sys/') ? void this.sysctls.set(p, t) : real.writeText(p, t)),
      exists: (p) => (p.startsWith('/run/netns/') ? this.links.has(p.slice('/run/netns/'.length)) : real.exists(p)),
      sameFile: (a, b) => a === b,
      inNetns: () => false,
    };
    useSys(fake);
    useRunner((cmd, args, opts) => this.start(cmd, args, opts));
    return () => {
      useRunner(undefined);
      useSys(undefined);
    };
  }

  /** The text the node's side got, every call after the first `n`, as `ns$ argv` then the lines. */
  text(from = 0): string {
    return this.calls
      .slice(from)
      .map((c) => [`${c.ns}$ ${c.argv}`, ...c.lines.map((l) => `  ${l}`)].join('\n'))
      .join('\n');
  }

  private procNetDev(): string {
    return ['Inter-|', ' face |', ...[...this.links.get('host')!.keys()].map((n) => `${n}: 0 0`)].join('\n');
  }

  private start(cmd: string, args: readonly string[], _opts: RunOptions): Started {
    let a = [...args];
    let ns = 'host';
    if (cmd === 'ip' && a[0] === '-n') {
      ns = a[1]!;
      a = a.slice(2);
    }
    return {
      finish: async (input = '') => {
        const lines = input.split('\n').filter(Boolean);
        this.calls.push({ ns, argv: [cmd, ...a].join(' '), lines });
        await Promise.resolve();
        if (cmd === 'ip' && a.includes('-j')) return this.read(ns, lines);
        if (cmd === 'ip' && a.includes('-batch')) return this.batch(ns, lines, a.includes('-force'));
        if (cmd === 'nft') return this.nftables(lines);
        return { code: 0, stdout: '', stderr: '' };
      },
    };
  }

  private ok(): RunResult {
    return { code: 0, stdout: '', stderr: '' };
  }

  private batch(ns: string, lines: string[], force: boolean): RunResult {
    const links = this.links.get(ns)!;
    const errors: string[] = [];
    for (const [i, line] of lines.entries()) {
      const refused = this.refusals.find((r) => (r.ns ?? 'host') === ns && r.match.test(line));
      const fail = refused ? refused : this.apply(ns, links, line);
      if (!fail) continue;
      const err = fail.lineless ? fail.stderr : `${fail.stderr}\nCommand failed -:${i + 1}`;
      if (!force || fail.lineless) return { code: 1, stdout: '', stderr: err };
      errors.push(err);
    }
    return errors.length ? { code: 1, stdout: '', stderr: errors.join('\n') } : this.ok();
  }

  /** One line's effect on the model; what ip would say when the kernel refuses it. */
  private apply(ns: string, links: Map<string, Link>, line: string): Refusal | undefined {
    const w = line.split(' ');
    if (w[0] === 'link' && w[1] === 'add') {
      const name = w[3]!;
      if (links.has(name)) return { match: /./, stderr: 'RTNETLINK answers: File exists' };
      if (line.includes('type veth')) {
        const peer = w[w.indexOf('peer') + 2]!;
        const target = this.links.get(w[w.indexOf('netns') + 1]!.replace('/run/netns/', ''))!;
        if (target.has(peer)) return { match: /./, stderr: 'RTNETLINK answers: File exists' };
        links.set(name, { kind: 'veth' });
        target.set(peer, { kind: 'veth' });
      } else links.set(name, { kind: line.includes('type bridge') ? 'bridge' : 'other' });
      return undefined;
    }
    if (w[0] === 'link' && w[1] === 'set') {
      const name = w[3]!;
      if (!links.has(name)) return { match: /./, stderr: `Cannot find device "${name}"` };
      const m = w.indexOf('master');
      if (m > 0) {
        const master = links.get(w[m + 1]!);
        // What iproute2 6.1 says, and it names no line: it stopped while reading the arguments.
        if (!master) return { match: /./, stderr: `Error: argument "${w[m + 1]}" is wrong: Device does not exist`, lineless: true };
        if (master.kind !== 'bridge') return { match: /./, stderr: 'RTNETLINK answers: Operation not supported' };
        links.get(name)!.master = w[m + 1];
      }
      return undefined;
    }
    if (w[0] === 'link' && w[1] === 'del') {
      const name = w[3]!;
      if (!links.delete(name)) return { match: /./, stderr: `Cannot find device "${name}"` };
      // A veth's other end goes with it.
      for (const [n, l] of this.links) if (n !== ns && l.get('eth0')?.kind === 'veth' && name.startsWith('veth')) l.delete('eth0');
      return undefined;
    }
    return undefined; // addr, route: no model kept
  }

  private read(ns: string, lines: string[]): RunResult {
    const out = lines.map((l) =>
      l.startsWith('addr show')
        ? JSON.stringify(
            [...this.links.get(ns)!].map(([ifname, k]) => ({
              ifname,
              flags: ['UP'],
              ...(k.master ? { master: k.master } : {}),
              ...(k.kind === 'other' ? {} : { linkinfo: { info_kind: k.kind } }),
              addr_info: [],
            })),
          )
        : '[]',
    );
    return { code: 0, stdout: out.join('\n') + '\n', stderr: '' };
  }

  private nftables(lines: string[]): RunResult {
    // An element by its set and key: a map's value and a comment are not part of what identifies it.
    const key = (l: string) => {
      const m = /^(?:add|delete) element (\S+ \S+ \S+) \{ (.*?)(?: comment "[^"]*")?(?: : [^}]*)? \}$/.exec(l);
      return m ? `${m[1]} { ${m[2]} }` : l;
    };
    for (const l of lines) {
      if (l.startsWith('add element')) this.nft.add(key(l));
      else if (l.startsWith('delete element')) this.nft.delete(key(l));
    }
    return this.ok();
  }
}
