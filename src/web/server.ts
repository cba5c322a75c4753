// `podwire web`: the lab (or this node) as a live page, served from this binary on a local address. The
// page (page.ts) asks for the picture's model and for a packet's path; both come from the explore code
// `diagram` and `path` use — no second model of the network. Read-only: nothing here changes the kernel,
// starts a shell, or sends a packet; every value a request brings is checked as the CLI checks it.
//
//   GET /                      the page (HTML, CSS and script inline: no CDN, nothing fetched elsewhere)
//   GET /api/model             nodes (with the nodePorts each answers), bridges, VXLAN devices, pods with their
//                              veths, tunnels and routes, hosts, and the Services kube-proxy's rules hold
//                              (iptables mode: Cluster IP:port -> backends' Pod IP:targetPort)
//   GET /api/path?src=&dst=&proto=&lang=   `podwire path` as JSON: every hop both ways, in words
//   GET /api/words?lang=zh     the page's own words
//   POST /api/send?src=&dst=&proto=&lang=   only when started with sending on (a lab): the packet really
//                              sent from SRC's namespace (an HTTP GET to DST:PORT, or one ping), what came
//                              back, and the path again — now with the conntrack entries that carry the reply
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { CATALOGUES, type Lang, LANGS, type MessageId, setLang } from '../i18n/index.js';
import { type Model, diagramModel } from '../explore/diagram.js';
import { type ServiceView, eachServiceOnce, pictureIn } from '../explore/services.js';
import { findPath, parseTarget, pathJson } from '../explore/path.js';
import { type Scope, readWorld } from '../explore/world.js';
import { parseIP } from '../net/ip.js';
import { PAGE } from './page.js';

export interface WebOptions {
  scope: () => Scope;
  title: string;
  /**
   * Sends one packet from a namespace of the scope (the lab's way: an HTTP GET, or a ping), when sending
   * is on; what came back ('' for nothing). Undefined: the page is read-only.
   */
  send?: (fromNs: string, dst: { ip: string; port?: number }, proto: string) => Promise<string>;
}

/** Only a loopback address: the page shows the node's pods and paths to whoever reaches it. */
export function checkWebHost(host: string): void {
  const ip = parseIP(host);
  const loopback = ip && (ip.family === 6 ? ip.value === 1n : ip.value >> 24n === 127n);
  if (!loopback) throw new Error(`--addr ${host}: podwire web listens on a loopback address only (127.0.0.1 or ::1)`);
}

const langOf = (v: string | null): Lang => (LANGS.includes(v as Lang) ? (v as Lang) : 'en');
const PROTOS = ['tcp', 'udp', 'icmp'];

function send(res: ServerResponse, code: number, type: string, body: string): void {
  res.writeHead(code, {
    'Content-Type': `${type}; charset=utf-8`,
    'Cache-Control': 'no-store',
    // The page runs only its own inline script and talks only to this server.
    'Content-Security-Policy':
      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}
const json = (res: ServerResponse, code: number, v: unknown) => send(res, code, 'application/json', JSON.stringify(v));

export interface WebModel extends Model {
  services: ServiceView[];
  /** Per node name: the nodePorts it answers. */
  nodePorts: Record<string, number[]>;
  /** Per Pod IP: its hostPorts ("8081/tcp → 8080"). */
  hostPorts: Record<string, string[]>;
}

/** The picture's model: the diagram's, each node's nodePorts and pods' hostPorts, and the Services. */
export async function webModel(o: WebOptions): Promise<WebModel> {
  const m = diagramModel(await readWorld(o.scope()), o.title);
  const per = await Promise.all(m.nodes.map((n) => pictureIn(n.ns)));
  const nodePorts = Object.fromEntries(m.nodes.map((n, i) => [n.name, per[i]!.services.flatMap((x) => (x.nodePort ? [x.nodePort] : []))]));
  return { ...m, services: eachServiceOnce(per), nodePorts, hostPorts: Object.assign({}, ...per.map((p) => p.hostPorts)) };
}

/** Answers one request. */
export async function handleWeb(req: IncomingMessage, res: ServerResponse, o: WebOptions): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'POST' && url.pathname === '/api/send') return sendIt(res, url, o);
  if (req.method !== 'GET') return json(res, 405, { error: 'GET only' });
  const lang = langOf(url.searchParams.get('lang'));
  if (url.pathname === '/') return send(res, 200, 'text/html', PAGE);
  if (url.pathname === '/api/words') {
    const words = Object.fromEntries(Object.entries(CATALOGUES[lang]).filter(([id]) => id.startsWith('web.')) as [MessageId, string][]);
    return json(res, 200, words);
  }
  if (url.pathname === '/api/model') return json(res, 200, { ...(await webModel(o)), send: o.send !== undefined });
  if (url.pathname === '/api/path') {
    const src = url.searchParams.get('src') ?? '';
    const dst = url.searchParams.get('dst') ?? '';
    const proto = url.searchParams.get('proto') ?? 'tcp';
    if (!PROTOS.includes(proto)) return json(res, 400, { error: `proto must be one of ${PROTOS.join(', ')}` });
    try {
      const w = await readWorld(o.scope());
      const p = await findPath(w, src, dst, proto);
      // Words made here, in the asker's language, in one synchronous stretch (the language is global).
      setLang(lang);
      return json(res, 200, pathJson(p));
    } catch (e) {
      return json(res, 400, { error: (e as Error).message });
    }
  }
  json(res, 404, { error: 'not found' });
}

/** "send it": the packet really sent, then its path with the live conntrack entries. */
async function sendIt(res: ServerResponse, url: URL, o: WebOptions): Promise<void> {
  if (!o.send) return json(res, 403, { error: 'sending is off: start podwire web --send in a lab' });
  const lang = langOf(url.searchParams.get('lang'));
  const proto = url.searchParams.get('proto') ?? 'tcp';
  try {
    const src = parseTarget(url.searchParams.get('src') ?? '');
    const dst = parseTarget(url.searchParams.get('dst') ?? '');
    if (proto === 'udp' || (proto === 'tcp' && dst.port === undefined))
      throw new Error('send it: a TCP destination needs its port (an HTTP GET), or use icmp (a ping)');
    const w = await readWorld(o.scope());
    const from = w.owners.get(src.ip);
    if (!from) throw new Error(`${src.ip} is not an address of the lab`);
    const answer = await o.send(from.ns, dst, proto);
    const p = await findPath(await readWorld(o.scope()), src.ip, url.searchParams.get('dst') ?? '', proto);
    setLang(lang);
    return json(res, 200, { arrived: answer !== '', answer: answer.slice(0, 400), path: pathJson(p) });
  } catch (e) {
    return json(res, 400, { error: (e as Error).message });
  }
}

/** Serves the page on host:port; resolves once listening (with the port, when 0 was asked for). */
export function serveWeb(host: string, port: number, o: WebOptions): Promise<{ server: Server; port: number }> {
  checkWebHost(host);
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => void handleWeb(req, res, o).catch((e: Error) => json(res, 500, { error: e.message })));
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a ? a.port : port });
    });
  });
}
