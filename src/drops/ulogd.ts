// Reading the packets podwire drops. Its rules log each drop (rate-limited) to one netlink log group
// (guard/table.ts GUARD_LOG_GROUP): the spoofing checks, the VXLAN port, NetworkPolicy. Debian's ulogd2
// reads the group and writes each packet as one JSON line (the ulogd2-json plugin) to our pipe: no
// netlink or packet parser of our own. One reader per group per network namespace (the kernel binds a
// group to one socket): the agent's, or `podwire drops` where no agent runs.
//
// What ulogd gives per packet: the rule's prefix ("podwire-guard ip4: "), the mark (a guard drop's port
// id: the port its sender is on, whatever it forged), addresses, ports, ICMP type and MACs. Not the
// bridge port itself (ulogd has no key for it: hence the mark), and not an ARP packet's addresses
// (ulogd 2.0.8 prints garbage for them: left out). The lines come over a unix socket we listen on: ulogd
// cannot open a child's standard output when it is a socket pair, as Node's pipes are.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sys } from '../runtime/files.js';
import { lineSplitter } from '../runtime/lines.js';
import { onPath } from '../kernel/tools.js';

/** One dropped packet as ulogd read it: values only, no words. */
export interface RawDrop {
  /** The rule's log prefix, without its ": ". */
  prefix: string;
  /** The packet's mark: a guard drop's port id. */
  mark: number;
  /** The ethertype (0x0800, 0x86dd, 0x0806, ...). */
  ethertype?: number;
  src?: string;
  dst?: string;
  /** IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6). */
  l4?: number;
  sport?: number;
  dport?: number;
  icmpType?: number;
  smac?: string;
  /** Milliseconds since the epoch. */
  time: number;
}

const PLUGIN_DIRS = ['/usr/lib/x86_64-linux-gnu/ulogd', '/usr/lib/aarch64-linux-gnu/ulogd', '/usr/lib64/ulogd', '/usr/lib/ulogd'];
const PLUGINS = ['inppkt_NFLOG', 'raw2packet_BASE', 'filter_IFINDEX', 'filter_IP2STR', 'filter_HWHDR', 'output_JSON'];

/** Where ulogd2's plugins are (with the JSON output of ulogd2-json), or why drops cannot be read. */
export function ulogdPlugins(): { dir: string } | { missing: string } {
  if (!onPath('ulogd')) return { missing: 'ulogd2 is not installed (Debian: apt-get install ulogd2 ulogd2-json)' };
  const dir = PLUGIN_DIRS.find((d) => sys().exists(`${d}/ulogd_inppkt_NFLOG.so`));
  if (!dir) return { missing: "ulogd2's NFLOG plugin was not found" };
  if (!sys().exists(`${dir}/ulogd_output_JSON.so`)) return { missing: 'ulogd2-json is not installed (apt-get install ulogd2-json)' };
  return { dir };
}

/** ulogd's configuration: the group, read into JSON lines sent to a unix socket. */
export function ulogdConfig(dir: string, group: number, logfile: string, socket: string): string {
  return [
    '[global]',
    `logfile="${logfile}"`,
    'loglevel=5',
    ...PLUGINS.map((p) => `plugin="${dir}/ulogd_${p}.so"`),
    'stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,mac2str1:HWHDR,json1:JSON',
    '[log1]',
    `group=${group}`,
    '[json1]',
    'mode="unix"',
    `file="${socket}"`,
    'sync=1',
    '',
  ].join('\n');
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

/** One JSON line of ulogd into a RawDrop; undefined for what is not one of ours (pure). */
export function parseUlogdLine(line: string): RawDrop | undefined {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const prefix = str(j['oob.prefix'])?.replace(/:\s*$/, '');
  if (!prefix?.startsWith('podwire-')) return undefined;
  const sec = num(j['oob.time.sec']);
  const usec = num(j['oob.time.usec']) ?? 0;
  const ethertype = num(j['oob.protocol']);
  const d: RawDrop = { prefix, mark: num(j['oob.mark']) ?? 0, time: sec !== undefined ? sec * 1000 + Math.floor(usec / 1000) : Date.now() };
  if (ethertype !== undefined) d.ethertype = ethertype;
  if (ethertype !== 0x0806) {
    const src = str(j.src_ip);
    const dst = str(j.dest_ip);
    if (src) d.src = src;
    if (dst) d.dst = dst;
  }
  const l4 = num(j['ip.protocol']) ?? num(j['ip6.nexthdr']);
  if (l4 !== undefined) d.l4 = l4;
  const sport = num(j.src_port);
  const dport = num(j.dest_port);
  if (sport !== undefined) d.sport = sport;
  if (dport !== undefined) d.dport = dport;
  const icmp = num(j['icmp.type']) ?? num(j['icmpv6.type']);
  if (icmp !== undefined) d.icmpType = icmp;
  const smac = str(j['mac.saddr.str']);
  if (smac) d.smac = smac;
  return d;
}

export interface DropReader {
  stop(): void;
  /** Settles when ulogd ends: with why, when it ended on its own (the group taken by another reader, ...). */
  ended: Promise<string | undefined>;
}

/**
 * Reads the group until stopped: ulogd started with a configuration in a private temporary directory,
 * each of its lines parsed. `onDrop` gets our drops only.
 */
export function readDrops(group: number, onDrop: (d: RawDrop) => void): DropReader | { missing: string } {
  const p = ulogdPlugins();
  if ('missing' in p) return p;
  const dir = mkdtempSync(join(tmpdir(), 'podwire-drops-'));
  const conf = join(dir, 'ulogd.conf');
  const logfile = join(dir, 'ulogd.log');
  const socket = join(dir, 'drops.sock');
  writeFileSync(conf, ulogdConfig(p.dir, group, logfile, socket), { mode: 0o600 });
  let stopping = false;
  let child: ChildProcess | undefined;
  const server = createServer((conn) => {
    conn.setEncoding('utf8');
    conn.on('error', () => undefined);
    conn.on(
      'data',
      lineSplitter((line) => {
        const d = parseUlogdLine(line);
        if (d) onDrop(d);
      }),
    );
  });
  const ended = new Promise<string | undefined>((resolve) => {
    const done = (why?: string) => {
      server.close();
      // ulogd's own words on why it stopped (a group another socket holds, a plugin it could not load).
      const said = sys().readText(logfile) ?? '';
      rmSync(dir, { recursive: true, force: true });
      const last = said
        .split('\n')
        .filter((l) => /<[78]>/.test(l))
        .map((l) => l.replace(/^.*?<\d> \S+ /, ''))
        .join('; ');
      resolve(stopping ? undefined : why || last || 'ulogd ended');
    };
    server.once('error', (e) => done(e.message));
    // Only our own user may connect: the socket is in a directory only we can enter (mkdtemp: 0700).
    server.listen(socket, () => {
      // ulogd dies with us (setpriv's parent-death signal, util-linux): a reader killed outright (the OOM
      // killer, SIGKILL) must not leave it holding the group, where the next reader could not bind.
      const argv = ['ulogd', '-c', conf];
      child = onPath('setpriv')
        ? spawn('setpriv', ['--pdeathsig', 'TERM', '--', ...argv], { stdio: 'ignore' })
        : spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
      child.once('error', (e) => done(e.message));
      child.once('exit', () => done());
    });
  });
  return {
    stop: () => {
      stopping = true;
      if (child) child.kill('SIGTERM');
      else server.close();
    },
    ended,
  };
}
