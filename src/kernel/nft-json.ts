// nftables as `nft -j list table ...` prints it: one type for every reader (the backend's own table,
// kube-proxy's, the NetworkPolicy table, path's walkers), and one way to read it, here or in a namespace.
import type { Family } from '../net/ip.js';
import { run } from '../runtime/run.js';

/** One object of a listing: {table}, {chain}, {rule}, {set}, {map}, {element}... with nft's own fields. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NftObject = Record<string, any>;

/** A listing as `nft -j` prints it. */
export interface NftListing {
  nftables?: NftObject[];
}

/** The objects of one kind in a listing ('rule', 'set', 'map', 'chain'). */
export const nftObjects = (l: NftListing | undefined, kind: string): NftObject[] =>
  (l?.nftables ?? []).flatMap((o) => (o[kind] ? [o[kind] as NftObject] : []));

/**
 * `nft -j list table FAMILY NAME`, in the namespace `ns` (a name under /run/netns) or here; undefined when
 * there is no such table (or no nft): a reader that explains asks, and takes "none" for an answer.
 */
export async function listNftTable(family: 'inet' | 'ip' | 'ip6' | 'bridge', name: string, ns?: string): Promise<NftListing | undefined> {
  const args = ['nft', '-j', 'list', 'table', family, name];
  try {
    const r = await (ns ? run('ip', ['netns', 'exec', ns, ...args]) : run(args[0]!, args.slice(1)));
    return r.code === 0 ? (JSON.parse(r.stdout) as NftListing) : undefined;
  } catch {
    return undefined;
  }
}

/** nftables' words for an address family: the set type of its addresses, and the expression's keyword. */
export const nftAddrType = (f: Family): string => (f === 4 ? 'ipv4_addr' : 'ipv6_addr');
export const nftIpKeyword = (f: Family): 'ip' | 'ip6' => (f === 4 ? 'ip' : 'ip6');
export const FAMILIES: readonly Family[] = [4, 6];
