// `podwire diagram`: an SVG of the lab (or this node) drawn from live state. Nodes with their Node IP,
// bridge and VXLAN device; under each node its pods, each hanging from the bridge by its veth pair (host
// end name, eth0 and Pod IP); between nodes, what podwire's routes say: a VXLAN tunnel or a host-gw route.
// The model is built from the kernel (world.ts), then laid out in columns; no layout library.
import { t } from '../i18n/index.js';
import { ipAddrs, kind } from '../kernel/state.js';
import { type NsView, peerPaths } from './view.js';
import { type Scope, type World, readWorld, vethPeer } from './world.js';
import { type ServiceView, eachServiceOnce, pictureIn } from './services.js';

export interface DPod {
  ns: string;
  name: string;
  ip: string;
  ifname: string;
  hostVeth: string;
}

export interface DNode {
  ns: string;
  name: string;
  nodeIPs: string[];
  bridge?: { name: string; addrs: string[] };
  /** The VXLAN devices (one per family). */
  vxlans: { name: string; vni: number; addr?: string }[];
  pods: DPod[];
}

export interface DPeerLink {
  from: string;
  /** A node's name, or a remote node's Node IP when it is not drawn (status of one node). */
  to: string;
  mode: 'vxlan' | 'host-gw';
  podCIDR: string;
  via: string;
}

export interface Model {
  title: string;
  nodes: DNode[];
  links: DPeerLink[];
  /** Other hosts on the network (the lab's router and outside host), with their addresses. */
  hosts: { ns: string; name: string; ips: string[] }[];
  /** Peers reached by routes but not drawn as nodes (a real node sees only itself). */
  remotes: { name: string; ip: string }[];
  /** The Services (kube-proxy's rules on the first node): the Service network, drawn below the pods. */
  services?: ServiceView[];
}

const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name, 'en', { numeric: true });

function nodeOf(w: World, v: NsView): DNode {
  const plain = v.links.filter((l) => l.ifname !== 'lo' && !l.master && !['bridge', 'vxlan'].includes(kind(l) ?? ''));
  const br = v.links.find((l) => kind(l) === 'bridge' && ipAddrs(l).length);
  const vxs = v.links.filter((l) => kind(l) === 'vxlan');
  const pods: DPod[] = [];
  for (const port of v.links.filter((l) => br && l.master === br.ifname && kind(l) === 'veth')) {
    const peer = vethPeer(w, v, port);
    if (!peer || w.roles.get(peer.ns)?.kind !== 'pod') continue;
    pods.push({
      ns: peer.ns,
      name: w.scope.name(peer.ns),
      ip: ipAddrs(peer.link).join(', ') || '?',
      ifname: peer.link.ifname,
      hostVeth: port.ifname,
    });
  }
  return {
    ns: v.name,
    name: w.scope.name(v.name),
    nodeIPs: plain.flatMap((l) => ipAddrs(l).map((a) => `${a} (${l.ifname})`)),
    bridge: br && { name: br.ifname, addrs: ipAddrs(br) },
    vxlans: vxs.map((vx) => ({ name: vx.ifname, vni: vx.linkinfo?.info_data?.id as number, addr: ipAddrs(vx)[0] })),
    pods: pods.sort(byName),
  };
}

/** The model of what is drawn, from the kernel's state. */
export function diagramModel(w: World, title: string): Model {
  const nodes = [...w.views.values()]
    .filter((v) => w.roles.get(v.name)?.kind === 'node')
    .map((v) => nodeOf(w, v))
    .sort(byName);
  const links: DPeerLink[] = [];
  const remotes = new Map<string, string>();
  for (const n of nodes) {
    const v = w.views.get(n.ns)!;
    for (const { route: r, mode, nodeIP } of peerPaths(v)) {
      if (!nodeIP) continue;
      const owner = w.owners.get(nodeIP);
      const to = owner && w.roles.get(owner.ns)?.kind === 'node' ? w.scope.name(owner.ns) : nodeIP;
      if (to === nodeIP) remotes.set(nodeIP, r.dst);
      links.push({ from: n.name, to, mode, podCIDR: r.dst, via: `${r.gateway} dev ${r.dev}` });
    }
  }
  const hosts = [...w.views.values()]
    .filter((v) => w.roles.get(v.name)?.kind === 'host' && v.links.some((l) => l.ifname !== 'lo' && ipAddrs(l).length))
    .map((v) => ({ ns: v.name, name: w.scope.name(v.name), ips: v.links.filter((l) => l.ifname !== 'lo').flatMap((l) => ipAddrs(l)) }))
    .sort(byName);
  return { title, nodes, links, hosts, remotes: [...remotes].map(([ip, cidr]) => ({ name: `peer ${cidr}`, ip })) };
}

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

const COL = 330;
const GAP = 50;
const TOP = 60;
const NODE_Y = 240;
const NODE_H = 150;
const POD_Y = NODE_Y + NODE_H + 70;
const POD_H = 58;
const POD_GAP = 22;

function text(x: number, y: number, s: string, cls = '', anchor = 'start'): string {
  return `<text x="${x}" y="${y}" class="${cls}" text-anchor="${anchor}">${esc(s)}</text>`;
}

/** The model as a standalone SVG document. */
export function renderSvg(m: Model): string {
  const columns = m.nodes.length + m.remotes.length;
  const width = Math.max(GAP + columns * (COL + GAP), 760);
  const maxPods = Math.max(0, ...m.nodes.map((n) => n.pods.length));
  const services = m.services ?? [];
  const perRow = Math.max(1, Math.floor((width - GAP) / (COL + GAP)));
  const SVC_Y = POD_Y + maxPods * (POD_H + POD_GAP) + 50;
  const height = POD_Y + maxPods * (POD_H + POD_GAP) + 70 + (services.length ? Math.ceil(services.length / perRow) * 74 + 30 : 0);
  const x0 = (i: number) => GAP + i * (COL + GAP);
  const center = new Map<string, number>();
  m.nodes.forEach((n, i) => center.set(n.name, x0(i) + COL / 2));
  m.remotes.forEach((r, i) => center.set(r.ip, x0(m.nodes.length + i) + COL / 2));
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"` +
      ` font-family="DejaVu Sans, Arial, sans-serif">`,
    [
      '<style>text{font-size:13px;fill:#1b1f24}',
      '.t{font-size:18px;font-weight:bold}.h{font-size:15px;font-weight:bold}.s{font-size:11px;fill:#555}',
      '.node{fill:#eef3fb;stroke:#3b6fb6;stroke-width:2}.pod{fill:#fff7e6;stroke:#c77d00;stroke-width:1.5}',
      '.br{fill:#3b6fb6}.brt{fill:#fff;font-weight:bold}',
      '.vx{fill:#e5f4ec;stroke:#2e8b57}.ul{stroke:#777;stroke-width:3}.veth{stroke:#c77d00;stroke-width:2}',
      '.tun{fill:none;stroke:#2e8b57;stroke-width:2.5;stroke-dasharray:8 5}.hgw{fill:none;stroke:#8a3ab9;stroke-width:2.5}',
      '.host{fill:#f2f2f2;stroke:#777}.remote{fill:#fafafa;stroke:#3b6fb6;stroke-dasharray:6 4}',
      '.svc{fill:#f7f0fb;stroke:#7a4fa5;stroke-dasharray:4 3}</style>',
    ].join(''),
    `<rect width="100%" height="100%" fill="#fff"/>`,
    text(GAP, 28, m.title, 't'),
  );

  // The underlay: one line every node's uplink hangs from, other hosts on it.
  out.push(
    `<line class="ul" x1="${GAP / 2}" y1="${TOP + 20}" x2="${width - GAP / 2}" y2="${TOP + 20}"/>`,
    text(GAP / 2, TOP + 12, t('diagram.underlay'), 's'),
  );
  let hx = width - GAP;
  for (const h of [...m.hosts].reverse()) {
    const label = `${h.name} ${h.ips.join(' ')}`;
    const w = label.length * 7 + 16;
    hx -= w;
    out.push(
      `<g data-kind="host" data-name="${esc(h.name)}"><rect class="host" x="${hx}" y="${TOP - 22}" width="${w}" height="24" ` +
        `rx="4"/>${text(hx + 8, TOP - 5, label, 's')}</g>`,
    );
    hx -= 12;
  }

  // Between nodes: podwire's routes, drawn once per pair and backend, as arcs above the nodes.
  const pairs = new Map<string, DPeerLink[]>();
  for (const l of m.links) {
    const key = [l.from, l.to].sort().join('|') + '|' + l.mode;
    pairs.set(key, [...(pairs.get(key) ?? []), l]);
  }
  let k = 0;
  for (const [, ls] of pairs) {
    const l = ls[0]!;
    const [a, b] = [center.get(l.from), center.get(l.to)];
    if (a === undefined || b === undefined) continue;
    const [x1, x2] = a < b ? [a, b] : [b, a];
    const lift = 30 + ((x2 - x1) / (COL + GAP) - 1) * 38 + (l.mode === 'host-gw' ? 14 : 0);
    const y = NODE_Y - 8;
    const cls = l.mode === 'vxlan' ? 'tun' : 'hgw';
    const way = ls.length === 2 ? t('diagram.bothWays') : `${l.from} -> ${l.to}`;
    const label = t(l.mode === 'vxlan' ? 'diagram.tunnel' : 'diagram.routes', { way });
    // The routes themselves, as a tooltip: they would not fit on the arc.
    const detail = ls.map((x) => `${x.from}: ${x.podCIDR} via ${x.via}`).join('\n');
    out.push(
      `<g data-kind="link" data-mode="${l.mode}"><title>${esc(detail)}</title><path class="${cls}" d="M ${x1 + 10 * (k % 3)} ${y} C ` +
        `${x1} ${y - lift * 2}, ${x2} ${y - lift * 2}, ${x2 - 10 * (k % 3)} ${y}"/>` +
        `${text((x1 + x2) / 2, y - lift * 1.5 - 6, label, 's', 'middle')}</g>`,
    );
    k++;
  }

  m.nodes.forEach((n, i) => {
    const x = x0(i);
    const cx = x + COL / 2;
    out.push(`<g data-kind="node" data-name="${esc(n.name)}">`);
    out.push(`<line class="ul" x1="${cx}" y1="${TOP + 20}" x2="${cx}" y2="${NODE_Y}"/>`);
    out.push(`<rect class="node" x="${x}" y="${NODE_Y}" width="${COL}" height="${NODE_H}" rx="8"/>`);
    out.push(text(x + 12, NODE_Y + 22, n.name, 'h'));
    n.nodeIPs.forEach((ip, j) => out.push(text(x + 12, NODE_Y + 42 + j * 16, t('diagram.nodeIP', { ip }))));
    if (n.vxlans.length) {
      out.push(`<rect class="vx" x="${x + 12}" y="${NODE_Y + 70}" width="${COL - 24}" height="30" rx="4"/>`);
      const vtep = (v: DNode['vxlans'][number]) => `${v.name}${v.addr ? ` (VTEP ${v.addr.split('/')[0]})` : ''}`;
      out.push(text(x + 20, NODE_Y + 90, `VXLAN VNI ${n.vxlans[0]!.vni}: ${n.vxlans.map(vtep).join(', ')}`, 's'));
    }
    if (n.bridge) {
      out.push(`<rect class="br" x="${x + 12}" y="${NODE_Y + NODE_H - 38}" width="${COL - 24}" height="26" rx="4"/>`);
      out.push(text(x + 20, NODE_Y + NODE_H - 20, t('diagram.bridge', { name: n.bridge.name, gateway: n.bridge.addrs.join(' ') }), 'brt'));
    }
    out.push('</g>');
    n.pods.forEach((p, j) => {
      const py = POD_Y + j * (POD_H + POD_GAP);
      const lx = x + 28 + j * 14;
      out.push(`<g data-kind="pod" data-name="${esc(p.name)}" data-ip="${esc(p.ip)}">`);
      out.push(
        `<line class="veth" x1="${lx}" y1="${NODE_Y + NODE_H - 12}" x2="${lx}" y2="${py + POD_H / 2}"/><line class="veth" x1="${lx}" ` +
          `y1="${py + POD_H / 2}" x2="${x + 70}" y2="${py + POD_H / 2}"/>`,
      );
      out.push(`<rect class="pod" x="${x + 70}" y="${py}" width="${COL - 70}" height="${POD_H}" rx="6"/>`);
      out.push(text(x + 80, py + 20, t('diagram.pod', { name: p.name }), 'h'));
      out.push(text(x + 80, py + 38, t('diagram.podIP', { ifname: p.ifname, ip: p.ip })));
      out.push(text(x + 80, py + 52, t('diagram.veth', { host: p.hostVeth, bridge: n.bridge?.name ?? '?', ifname: p.ifname }), 's'));
      out.push('</g>');
    });
  });
  m.remotes.forEach((r, i) => {
    const x = x0(m.nodes.length + i);
    out.push(
      `<g data-kind="remote" data-name="${esc(r.ip)}"><line class="ul" x1="${x + COL / 2}" y1="${TOP + 20}" x2="${x + COL / 2}" ` +
        `y2="${NODE_Y}"/>` +
        `<rect class="remote" x="${x}" y="${NODE_Y}" width="${COL}" height="70" ` +
        `rx="8"/>${text(x + 12, NODE_Y + 24, t('diagram.remote', { ip: r.ip }), 'h')}${text(x + 12, NODE_Y + 46, r.name, 's')}</g>`,
    );
  });
  // The Service network: Cluster IPs that no interface owns, each rewritten by kube-proxy to a backend.
  if (services.length) out.push(text(GAP / 2, SVC_Y - 10, t('diagram.services'), 's'));
  services.forEach((v, i) => {
    const x = x0(i % perRow);
    const y = SVC_Y + Math.floor(i / perRow) * 74;
    const at = (ip: string, port?: number) => (port === undefined ? ip : ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
    out.push(
      `<g data-kind="service" data-name="${esc(v.name)}"><rect class="svc" x="${x}" y="${y}" width="${COL}" height="62" rx="6"/>` +
        text(x + 10, y + 18, v.name, 'h') +
        text(x + 10, y + 36, `${at(v.clusterIP, v.port)} → ${v.backends.map((b) => at(b.ip, b.port)).join(', ') || '-'}`) +
        (v.nodePort ? text(x + 10, y + 53, `nodePort ${v.nodePort}`, 's') : '') +
        '</g>',
    );
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Reads the namespaces of `scope` (the lab, or this node) and draws them, the Services below. */
export async function diagram(scope: Scope, title: string): Promise<string> {
  const m = diagramModel(await readWorld(scope), title);
  return renderSvg({ ...m, services: eachServiceOnce(await Promise.all(m.nodes.map((n) => pictureIn(n.ns)))) });
}
