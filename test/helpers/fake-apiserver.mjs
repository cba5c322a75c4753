// @ts-check
// A stand-in for the Kubernetes API server, for Nodes only: list, watch (newline-delimited JSON events,
// resourceVersion, "410 Gone" after compaction), get, PATCH of nodes and nodes/status (strategic merge,
// JSON merge), and the discovery endpoints a real client reads first (/version, /api, /apis, /api/v1).
// No API server can run on these machines; this speaks the same protocol with real Node objects, and a
// test holds it to what kubectl, a client nobody here wrote, expects of it (test/integration/kubectl.test.ts).
//
// In-process: `const api = fakeApiServer(); await api.listen(0, '127.0.0.1')`.
// As a process (so it can run inside a test's network namespace): `node fake-apiserver.mjs PORT HOST`,
// driven by JSON lines on stdin ({"op":"add","node":{...}}, update, remove, drop, compact, restart),
// reporting on stdout ({"listening":port}, {"done":op}, {"patch":{name,body,contentType}}, {"watches":n}).
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** A Node as kubelet and kube-controller-manager leave it: InternalIP, and spec.podCIDR(s) once given. */
export function kubeNode(name, internalIP, podCIDR) {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, uid: `uid-${name}`, labels: { 'kubernetes.io/hostname': name }, annotations: {} },
    spec: podCIDR ? { podCIDR, podCIDRs: [podCIDR] } : {},
    status: {
      addresses: [
        { type: 'InternalIP', address: internalIP },
        { type: 'Hostname', address: name },
      ],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }],
    },
  };
}

const clone = (o) => JSON.parse(JSON.stringify(o));

const isObject = (v) => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * A patch applied to an object, as the API server does for the kinds of patch clients send: JSON merge
 * (RFC 7386: objects merged key by key, null deletes, anything else replaced) and, for strategic merge,
 * the same except that lists with a merge key (status.conditions by type, status.addresses by type) are
 * merged item by item.
 */
function applyPatch(target, patch, strategic, path = '') {
  for (const [k, v] of Object.entries(patch)) {
    const at = `${path}.${k}`;
    if (v === undefined) continue;
    if (v === null) delete target[k];
    else if (strategic && Array.isArray(v) && (at === '.status.conditions' || at === '.status.addresses')) {
      const list = (target[k] ??= []);
      for (const item of v) {
        const i = list.findIndex((x) => x.type === item.type);
        if (i >= 0) list[i] = { ...list[i], ...item };
        else list.push(item);
      }
    } else if (isObject(v)) applyPatch(isObject(target[k]) ? target[k] : (target[k] = {}), v, strategic, at);
    else target[k] = clone(v);
  }
}

/** What discovery says of the one resource served here. */
const NODE_RESOURCES = {
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion: 'v1',
  resources: [
    { name: 'nodes', singularName: 'node', namespaced: false, kind: 'Node', verbs: ['get', 'list', 'patch', 'watch'], shortNames: ['no'] },
    { name: 'nodes/status', singularName: '', namespaced: false, kind: 'Node', verbs: ['get', 'patch'] },
  ],
};

export function fakeApiServer({ nodes = [] } = {}) {
  let rv = 1;
  let oldest = 1; // events older than this were compacted away: watching from before it is 410 Gone
  const store = new Map();
  const history = []; // { rv, type, object }
  const watches = new Set();
  const patches = [];
  const emitter = { onPatch: () => {}, onWatches: () => {}, onEvent: () => {} };
  // Faults an API server shows under load, in upgrades or when broken, for lists and watches of every
  // collection (see `fault` below); and a log of those requests, so a test sees when a client came back.
  const faults = {
    /** Answer lists and watches with this status (and Retry-After seconds) until `until` (ms since the epoch). */
    status: undefined,
    /** Lists answer with no items this many times / without these names this many times. */
    emptyLists: 0,
    without: undefined,
    /** Cut the next watch's first event in half, then end it. */
    truncate: 0,
    /** Answer every list and watch this many ms late. */
    slowMs: 0,
    /** Serve at most this many items a page (limit/continue), whatever the client asks. */
    pageSize: 0,
    /** continue tokens handed out before this are expired (410). */
    continueFrom: 0,
  };
  const requests = []; // { at, path, watch, status }

  const record = (type, obj) => {
    rv++;
    obj.metadata.resourceVersion = String(rv);
    const ev = { rv, type, object: clone(obj) };
    history.push(ev);
    for (const w of watches) w.write(JSON.stringify({ type, object: ev.object }) + '\n');
  };
  const put = (node, type) => {
    const n = clone(node);
    store.set(n.metadata.name, n);
    record(type, n);
  };
  for (const n of nodes) put(n, 'ADDED');

  // Pods, Namespaces and NetworkPolicies (what the agent's NetworkPolicy loop lists and watches): list and
  // watch of all of them, each kind with its own history, on the shared resourceVersion.
  const KINDS = {
    Pod: { path: '/api/v1/pods', list: 'PodList', apiVersion: 'v1' },
    Namespace: { path: '/api/v1/namespaces', list: 'NamespaceList', apiVersion: 'v1' },
    NetworkPolicy: { path: '/apis/networking.k8s.io/v1/networkpolicies', list: 'NetworkPolicyList', apiVersion: 'networking.k8s.io/v1' },
  };
  const collections = new Map(
    Object.entries(KINDS).map(([kind, k]) => [k.path, { kind, ...k, store: new Map(), history: [], watches: new Set() }]),
  );
  const byKind = (kind) => [...collections.values()].find((c) => c.kind === kind);
  const keyOf = (o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  const recordIn = (c, type, obj) => {
    rv++;
    obj.metadata.resourceVersion = String(rv);
    const ev = { rv, type, object: clone(obj) };
    c.history.push(ev);
    for (const w of c.watches) w.write(JSON.stringify({ type, object: ev.object }) + '\n');
  };
  const putObject = (kind, o) => {
    const c = byKind(kind);
    const obj = { apiVersion: c.apiVersion, kind, ...clone(o) };
    const type = c.store.has(keyOf(obj)) ? 'MODIFIED' : 'ADDED';
    c.store.set(keyOf(obj), obj);
    recordIn(c, type, obj);
  };
  const deleteObject = (kind, namespace, name) => {
    const c = byKind(kind);
    const k = `${namespace ?? ''}/${name}`;
    const obj = c.store.get(k);
    c.store.delete(k);
    if (obj) recordIn(c, 'DELETED', obj);
  };
  const serveCollection = (c, req, res, url) => {
    if (url.searchParams.get('watch') === 'true') {
      const from = Number(url.searchParams.get('resourceVersion') || '0');
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      res.flushHeaders();
      for (const ev of c.history) if (ev.rv > from) res.write(JSON.stringify({ type: ev.type, object: ev.object }) + '\n');
      c.watches.add(res);
      res.on('close', () => c.watches.delete(res));
      return;
    }
    listBody(c.list, c.apiVersion, c.store.values(), url, res);
  };

  /** A list as the API server pages it: at most pageSize items, a continue token while more are left. */
  const listBody = (kind, apiVersion, items, url, res) => {
    let all = [...items].sort((a, b) =>
      `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace ?? ''}/${b.metadata.name}`),
    );
    if (faults.emptyLists > 0) {
      faults.emptyLists--;
      all = [];
    } else if (faults.without && faults.without.times > 0) {
      faults.without.times--;
      all = all.filter((o) => !faults.without.names.includes(o.metadata.name));
    }
    const cont = url.searchParams.get('continue');
    let from = 0;
    let at = rv;
    if (cont) {
      const [tokRv, off] = Buffer.from(cont, 'base64').toString().split(':').map(Number);
      if (tokRv < faults.continueFrom || tokRv < oldest - 1) {
        send(res, 410, status(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.'));
        return;
      }
      from = off;
      at = tokRv;
    }
    const limit = Math.min(Number(url.searchParams.get('limit')) || Infinity, faults.pageSize || Infinity);
    const page = all.slice(from, from + limit);
    const more = from + page.length < all.length;
    const metadata = {
      resourceVersion: String(at),
      ...(more ? { continue: Buffer.from(`${at}:${from + page.length}`).toString('base64') } : {}),
    };
    send(res, 200, { kind, apiVersion, metadata, items: page });
  };

  const send = (res, code, body) => {
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const status = (code, reason, message) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });

  const isCollection = (url) => url.pathname === '/api/v1/nodes' || collections.has(url.pathname);
  const handler = (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'GET' && isCollection(url)) {
      const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
      const st = faults.status && Date.now() < faults.status.until ? faults.status : undefined;
      if (!req.slowed) requests.push({ at: Date.now(), path: url.pathname, watch, status: st?.code ?? 200 });
      if (st) {
        res.writeHead(st.code, { 'Content-Type': 'application/json', ...(st.retryAfter ? { 'Retry-After': String(st.retryAfter) } : {}) });
        res.end(
          JSON.stringify(status(st.code, st.code === 429 ? 'TooManyRequests' : 'InternalError', 'the fake API server fails on purpose')),
        );
        return;
      }
      if (faults.slowMs && !req.slowed) {
        req.slowed = true;
        setTimeout(() => handler(req, res), faults.slowMs);
        return;
      }
      if (watch && faults.truncate > 0) {
        faults.truncate--;
        const c = collections.get(url.pathname);
        const obj = c ? [...c.store.values()][0] : [...store.values()][0];
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ type: 'MODIFIED', object: obj ?? {} }).slice(0, 40));
        return;
      }
    }
    const parts = url.pathname.split('/').filter(Boolean); // api v1 nodes [name] [status]
    if (req.method === 'GET' && url.pathname === '/version') {
      return send(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.0-podwire-fake', platform: 'linux/amd64' });
    }
    if (req.method === 'GET' && url.pathname === '/api') {
      const serverAddress = `${where.host}:${where.port}`;
      return send(res, 200, {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
      });
    }
    if (req.method === 'GET' && url.pathname === '/apis') return send(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
    if (req.method === 'GET' && url.pathname === '/api/v1') return send(res, 200, NODE_RESOURCES);
    // Events (POST only, what the agent does to tell an operator about a Node it left out).
    if (req.method === 'POST' && parts[0] === 'api' && parts[1] === 'v1' && parts[2] === 'namespaces' && parts[4] === 'events') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        let ev;
        try {
          ev = JSON.parse(body);
        } catch (e) {
          return send(res, 400, status(400, 'BadRequest', `error decoding event: ${e.message}`));
        }
        const made = { ...ev, metadata: { ...ev.metadata, namespace: parts[3], name: ev.metadata?.name ?? `ev-${rv}` } };
        emitter.onEvent(made);
        send(res, 201, made);
      });
      return;
    }
    const coll = req.method === 'GET' ? collections.get(url.pathname) : undefined;
    if (coll) return serveCollection(coll, req, res, url);
    if (parts[0] !== 'api' || parts[1] !== 'v1' || parts[2] !== 'nodes') return send(res, 404, status(404, 'NotFound', url.pathname));
    const name = parts[3];
    if (req.method === 'GET' && !name && url.searchParams.get('watch') === 'true') {
      const from = Number(url.searchParams.get('resourceVersion') || '0');
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      res.flushHeaders(); // the client's fetch resolves on the headers, before any event
      if (from && from < oldest - 1) {
        // What the API server does: a 200 stream carrying one ERROR event with a 410 Status, then the end.
        res.end(JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${oldest})`) }) + '\n');
        return;
      }
      for (const ev of history) if (ev.rv > from) res.write(JSON.stringify({ type: ev.type, object: ev.object }) + '\n');
      watches.add(res);
      emitter.onWatches(watches.size);
      res.on('close', () => {
        watches.delete(res);
        emitter.onWatches(watches.size);
      });
      return;
    }
    if (req.method === 'GET' && !name) return listBody('NodeList', 'v1', store.values(), url, res);
    const node = name ? store.get(name) : undefined;
    if (!node) return send(res, 404, status(404, 'NotFound', `nodes "${name}" not found`));
    if (req.method === 'GET' && parts.length === 4) return send(res, 200, node);
    // PATCH of a node (kubectl annotate, label, patch) or of its status (the agent).
    if (req.method === 'PATCH' && (parts.length === 4 || parts[4] === 'status')) {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const contentType = String(req.headers['content-type'] ?? '').split(';')[0];
        if (contentType !== 'application/strategic-merge-patch+json' && contentType !== 'application/merge-patch+json') {
          return send(res, 415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format: ${contentType}`));
        }
        let patch;
        try {
          patch = JSON.parse(body);
        } catch (e) {
          return send(res, 400, status(400, 'BadRequest', `error decoding patch: ${e.message}`));
        }
        patches.push({ name, body: patch, contentType });
        emitter.onPatch({ name, body: patch, contentType });
        // A status patch changes only the status and metadata; a node patch anything but the status.
        const { status: st, ...rest } = patch;
        applyPatch(
          node,
          parts[4] === 'status' ? { metadata: patch.metadata, status: st } : rest,
          contentType.startsWith('application/strategic'),
        );
        record('MODIFIED', node);
        send(res, 200, node);
      });
      return;
    }
    send(res, 405, status(405, 'MethodNotAllowed', `${req.method} ${url.pathname}`));
  };

  let server;
  let where = { port: 0, host: '127.0.0.1' };
  const listen = (port, host) =>
    new Promise((resolve, reject) => {
      server = createServer(handler);
      server.once('error', reject);
      server.listen(port, host, () => {
        where = { port: server.address().port, host };
        resolve(where.port);
      });
    });
  const dropWatches = () => {
    for (const c of collections.values()) {
      for (const w of c.watches) w.end();
      c.watches.clear();
    }
    for (const w of watches) w.end();
    watches.clear();
    emitter.onWatches(0);
  };
  const close = () =>
    new Promise((resolve) => {
      for (const w of watches) w.destroy();
      for (const c of collections.values()) for (const w of c.watches) w.destroy();
      server?.closeAllConnections?.();
      server ? server.close(() => resolve()) : resolve();
    });

  return {
    emitter,
    patches,
    requests,
    /**
     * A fault for lists and watches of every collection: {status: 500|429|..., retryAfter?, ms} answers
     * that status for ms; {emptyLists: n}; {without: [names], times: n}; {truncate: n}; {slowMs};
     * {pageSize}; {expireContinue: true} (tokens handed out so far get 410); {clear: true}.
     */
    fault: (f) => {
      if (f.clear) Object.assign(faults, { status: undefined, emptyLists: 0, without: undefined, truncate: 0, slowMs: 0, pageSize: 0 });
      if (f.status) faults.status = { code: f.status, retryAfter: f.retryAfter, until: Date.now() + (f.ms ?? 1e9) };
      if (f.emptyLists !== undefined) faults.emptyLists = f.emptyLists;
      if (f.without) faults.without = { names: f.without, times: f.times ?? 1 };
      if (f.truncate !== undefined) faults.truncate = f.truncate;
      if (f.slowMs !== undefined) faults.slowMs = f.slowMs;
      if (f.pageSize !== undefined) faults.pageSize = f.pageSize;
      if (f.expireContinue) faults.continueFrom = rv + 1;
    },
    listen,
    get url() {
      return `http://${where.host}:${where.port}`;
    },
    node: (n) => store.get(n),
    /** A Pod, Namespace or NetworkPolicy created or replaced (kubectl apply). */
    put: putObject,
    /** ... and deleted. */
    delete: deleteObject,
    add: (node) => put(node, 'ADDED'),
    /** In the store with no watch event (an event a client missed): only a list finds it. */
    sneak: (node) => {
      const n = clone(node);
      n.metadata.resourceVersion = String(rv);
      store.set(n.metadata.name, n);
    },
    update: (node) => put(node, 'MODIFIED'),
    remove: (n) => {
      const node = store.get(n);
      store.delete(n);
      if (node) record('DELETED', node);
    },
    /** Ends every open watch: clients re-watch from their last resourceVersion. */
    dropWatches,
    /** Forgets the event history (etcd compaction) and ends the watches: clients get 410 Gone and re-list. */
    compact: () => {
      history.length = 0;
      oldest = rv + 2;
      rv = oldest;
      dropWatches();
    },
    /** Stops listening for a while (an API server restart): clients see connection errors, then it is back. */
    restart: async (ms) => {
      await close();
      await new Promise((r) => setTimeout(r, ms));
      await listen(where.port, where.host);
      requests.push({ at: Date.now(), path: '(listening again)', watch: false, status: 0 });
    },
    close,
  };
}

/** A kubeconfig for a plain-HTTP server (the fake one); client-node refuses http:// without skip-tls-verify. */
export function kubeconfigYaml(url) {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- cluster: {server: "${url}", insecure-skip-tls-verify: true}`,
    '  name: lab',
    'contexts:',
    '- context: {cluster: lab, user: agent}',
    '  name: lab',
    'current-context: lab',
    'users:',
    '- name: agent',
    '  user: {token: "fake-token"}',
    '',
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const api = fakeApiServer();
  const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
  api.emitter.onPatch = (p) => out({ patch: p });
  api.emitter.onEvent = (e) => out({ event: e });
  api.emitter.onWatches = (n) => out({ watches: n });
  const port = await api.listen(Number(process.argv[2] ?? 0), process.argv[3] ?? '127.0.0.1');
  out({ listening: port });
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const m = JSON.parse(line);
    if (m.op === 'add') api.add(m.node);
    else if (m.op === 'update') api.update(m.node);
    else if (m.op === 'remove') api.remove(m.name);
    else if (m.op === 'put') api.put(m.kind, m.object);
    else if (m.op === 'delete') api.delete(m.kind, m.namespace, m.name);
    else if (m.op === 'drop') api.dropWatches();
    else if (m.op === 'compact') api.compact();
    else if (m.op === 'restart') await api.restart(m.ms ?? 500);
    else if (m.op === 'stop') await api.close();
    else if (m.op === 'start') {
      await api.listen(port, process.argv[3] ?? '127.0.0.1');
      out({ back: Date.now() });
    } else if (m.op === 'fault') api.fault(m.fault);
    else if (m.op === 'requests') out({ requests: api.requests.splice(0) });
    out({ done: m.op });
  }
  await api.close();
}
