// The namespaces status, path and diagram look at, read from the kernel, with what each one is: a node
// (it has a bridge with an address, or a VXLAN device), a pod (its veth's other end is on a node's
// bridge), or another host. On a real node: this namespace and the pods' namespaces in /run/netns
// (thisNode()); the lab hands in its own (lab/netns.ts labScope()).
import { type Msg, msg, t } from '../i18n/index.js';
import { type Link, ipAddrs, kind, linkByName, namedNamespaces } from '../kernel/state.js';
import { type NsView, peerNs, readNs } from './view.js';

export type Role = { kind: 'node' } | { kind: 'pod'; node: string; hostVeth: string; bridge: string } | { kind: 'host' };

export interface Owner {
  ns: string;
  dev: string;
}

/** Which namespaces to look at, and what to call them. */
export interface Scope {
  /** '' is this process's own namespace. */
  namespaces: readonly string[];
  /** A namespace's name for people ("node1", "this node"). */
  name(ns: string): string;
  /** The scope in words, for messages: "the lab", "this node and its pods". */
  what: string;
}

/** This node: its own namespace and every named one (its pods'). */
export const thisNode = (): Scope => ({
  namespaces: ['', ...namedNamespaces()],
  name: (ns) => (ns === '' ? t('scope.thisNode') : ns),
  what: t('scope.thisNodePods'),
});

export interface World {
  scope: Scope;
  views: Map<string, NsView>;
  roles: Map<string, Role>;
  /** Who holds each address (IPv4, and IPv6 but link-local). */
  owners: Map<string, Owner>;
}

const isNode = (v: NsView): boolean => v.links.some((l) => (kind(l) === 'bridge' && ipAddrs(l).length > 0) || kind(l) === 'vxlan');

/**
 * The other end of veth `l` of `v`. By the namespace id when that namespace has a name; our own namespace
 * has none in /run/netns, so otherwise by the pair of ifindexes pointing at each other.
 */
export function vethPeer(w: World, v: NsView, l: Link): { ns: string; link: Link } | undefined {
  const ns = peerNs(v, l);
  const other = ns === undefined ? v : w.views.get(ns);
  const link = other?.links.find((x) => x.ifindex === l.link_index);
  if (other && link) return { ns: other.name, link };
  for (const o of w.views.values()) {
    if (o === v) continue;
    const x = o.links.find((c) => c.ifindex === l.link_index && c.link_index === l.ifindex && kind(c) === 'veth');
    if (x) return { ns: o.name, link: x };
  }
  return undefined;
}

export async function readWorld(scope: Scope): Promise<World> {
  const views = new Map((await Promise.all(scope.namespaces.map((n) => readNs(n)))).map((v) => [v.name, v]));
  const w: World = { scope, views, roles: new Map(), owners: new Map() };
  for (const v of views.values()) {
    w.roles.set(v.name, isNode(v) ? { kind: 'node' } : { kind: 'host' });
    for (const l of v.links)
      for (const a of l.addr_info ?? [])
        if (
          (a.family === 'inet' && !a.local.startsWith('127.')) ||
          (a.family === 'inet6' && a.local !== '::1' && !a.local.startsWith('fe80:'))
        )
          w.owners.set(a.local, { ns: v.name, dev: l.ifname });
  }
  for (const v of views.values()) {
    if (w.roles.get(v.name)!.kind === 'node') continue;
    for (const l of v.links) {
      if (kind(l) !== 'veth' || !ipAddrs(l).length) continue;
      const peer = vethPeer(w, v, l);
      if (
        peer &&
        w.roles.get(peer.ns)?.kind === 'node' &&
        peer.link.master &&
        kind(linkByName(w.views.get(peer.ns)!.links, peer.link.master)) === 'bridge'
      ) {
        w.roles.set(v.name, { kind: 'pod', node: peer.ns, hostVeth: peer.link.ifname, bridge: peer.link.master });
      }
    }
  }
  return w;
}

/** What an address is, in words: "Pod IP of n1-pod1 on node1", "Node IP of node2", "gateway (cni0 of node1)". */
export function addressKind(w: World, ip: string): Msg | undefined {
  const o = w.owners.get(ip);
  if (!o) return undefined;
  const role = w.roles.get(o.ns)!;
  if (role.kind === 'pod') return msg('kind.pod', { pod: w.scope.name(o.ns), node: w.scope.name(role.node) });
  if (role.kind === 'node') {
    const k = kind(linkByName(w.views.get(o.ns)!.links, o.dev));
    if (k === 'bridge') return msg('kind.gateway', { dev: o.dev, node: w.scope.name(o.ns) });
    if (k === 'vxlan') return msg('kind.vtep', { dev: o.dev, node: w.scope.name(o.ns) });
    return msg('kind.node', { node: w.scope.name(o.ns) });
  }
  return msg('kind.other', { ns: w.scope.name(o.ns), dev: o.dev });
}
