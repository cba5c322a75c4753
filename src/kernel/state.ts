// What the kernel holds in one network namespace, as `ip -j -d` and `bridge -j` print it: one typed
// vocabulary for all of podwire (the plugin's CHECK, node setup and peers sync, status, path, diagram)
// and one reader. A read takes at most three processes, run side by side: `ip -j -d -batch` (links with
// their addresses, routes, neighbours, the ids of other namespaces), `ip -6` for IPv6 routes (a batch's
// `route show` lists IPv4 only), and `bridge -j fdb show`.
import { sys } from '../runtime/files.js';
import { run } from '../runtime/run.js';
import { commandFailed } from './errors.js';
import { inNetns, ipJson } from './run.js';

export interface Addr {
  family: string;
  local: string;
  prefixlen: number;
}

export interface Link {
  ifindex?: number;
  ifname: string;
  mtu: number;
  address?: string;
  master?: string;
  flags?: string[];
  operstate?: string;
  /** The namespace (by id, see State.nsids) holding the other end of a veth. */
  link_netnsid?: number;
  /** The other end's ifindex (in link_netnsid's namespace, or this one). */
  link_index?: number;
  addr_info?: Addr[];
  linkinfo?: {
    info_kind?: string;
    info_data?: Record<string, unknown>;
    info_slave_kind?: string;
    info_slave_data?: Record<string, unknown>;
  };
}

export interface Route {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  flags?: string[];
  type?: string;
  metric?: number;
}

export interface Neigh {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

export interface FdbEntry {
  mac: string;
  ifname?: string;
  master?: string;
  dst?: string;
  flags?: string[];
  state?: string;
  vlan?: number;
}

/** Another namespace this one has an id for (a veth peer's), with its /run/netns name when it has one. */
export interface NsId {
  nsid: number;
  name?: string;
}

export interface State {
  links: Link[];
  routes: Route[];
  neighs: Neigh[];
  nsids: NsId[];
  fdb: FdbEntry[];
}

/** What to read besides the links, which are always read. Each selector is the words after `show`. */
export interface Query {
  /** e.g. "table main", "table main proto 112". */
  routes?: string;
  /** IPv6 routes too, with the same selector (one more process). */
  routes6?: boolean;
  /** e.g. "" (all), "dev podwire.1 nud permanent". */
  neighs?: string;
  nsids?: boolean;
  /** e.g. "" (all), "dev podwire.1": a device that does not exist reads as no entries. */
  fdb?: string;
  /** 6: one IPv6 read (`ip -6`: links with their IPv6 addresses, IPv6 routes and neighbours) instead of the default. */
  family?: 4 | 6;
}

/** Reads a namespace (a path: /run/netns/NAME, /proc/PID/ns/net) or, without one, this process's own. */
export async function readState(netns: string | undefined, q: Query = {}): Promise<State> {
  const lines = ['addr show'];
  if (q.routes !== undefined) lines.push(`route show ${q.routes}`);
  if (q.neighs !== undefined) lines.push(`neigh show ${q.neighs}`);
  if (q.nsids) lines.push('netns list-id');
  const [main, v6, fdb] = await Promise.all([
    ipJson(lines, netns, q.family === 6 ? ['-6'] : []),
    q.routes6 ? ipJson([`route show ${q.routes}`], netns, ['-6']) : undefined,
    q.fdb !== undefined ? run(...inNetns('bridge', ['-j', 'fdb', 'show', ...q.fdb.split(' ').filter(Boolean)], netns)) : undefined,
  ]);
  const [links = [], ...rest] = main as [Link[]?, ...unknown[][]];
  const take = <T>(wanted: boolean): T[] => (wanted ? ((rest.shift() ?? []) as T[]) : []);
  const state: State = {
    links,
    routes: [...take<Route>(q.routes !== undefined), ...((v6?.[0] ?? []) as Route[])],
    neighs: take<Neigh>(q.neighs !== undefined),
    nsids: take<NsId>(!!q.nsids),
    fdb: [],
  };
  if (fdb && fdb.code === 0) state.fdb = JSON.parse(fdb.stdout || '[]') as FdbEntry[];
  else if (fdb) {
    const dev = /^dev (\S+)/.exec(q.fdb ?? '')?.[1];
    if (!dev || links.some((l) => l.ifname === dev)) throw commandFailed('bridge fdb show', fdb.stderr);
  }
  return state;
}

export const linkByName = (links: readonly Link[], name: string | undefined): Link | undefined => links.find((l) => l.ifname === name);
export const kind = (l: Link | undefined): string | undefined => l?.linkinfo?.info_kind;
export const isUp = (l: Link | undefined): boolean => !!l?.flags?.includes('UP');
/** A link's IPv4 addresses, "10.244.1.1/24". */
export const v4Addrs = (l: Link | undefined): string[] =>
  (l?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
/** A link's global addresses of both families, IPv4 first ("10.244.1.1/24", "fd00:10:244:1::1/64"). */
export const ipAddrs = (l: Link | undefined): string[] => [...addrsOf(l, 4), ...addrsOf(l, 6)];
/** A link's addresses of a family, link-local IPv6 left out (the kernel makes those itself). */
export const addrsOf = (l: Link | undefined, family: 4 | 6): string[] =>
  family === 4
    ? v4Addrs(l)
    : (l?.addr_info ?? []).filter((a) => a.family === 'inet6' && !a.local.startsWith('fe80:')).map((a) => `${a.local}/${a.prefixlen}`);

/**
 * The kernel's answer to `ip route get DST [from SRC iif DEV]` in a namespace: the route a packet takes
 * (a Route; `dst` is the destination asked about). Throws a KernelError when ip refuses the question.
 */
export async function routeGet(netns: string | undefined, dst: string, from?: { src: string; iif: string }): Promise<Route | undefined> {
  const [[r] = []] = await ipJson([`route get ${dst}${from ? ` from ${from.src} iif ${from.iif}` : ''}`], netns);
  return r as Route | undefined;
}

/** The names of the network namespaces in /run/netns (what `ip netns list` lists), without a process. */
export function namedNamespaces(): string[] {
  try {
    return sys().readdir('/run/netns').sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Packets a device has received (`ip -s`): what doctor counts around a probe. NaN when the device is not there. */
export async function rxPackets(netns: string | undefined, dev: string): Promise<number> {
  const [[l] = []] = await ipJson([`link show dev ${dev}`], netns, ['-s']).catch(() => [[]]);
  return Number((l as { stats64?: { rx?: { packets?: number } } } | undefined)?.stats64?.rx?.packets ?? NaN);
}
