// The page `podwire web` serves: one HTML document with its style and script inline (nothing fetched
// from anywhere but this server). It draws the model /api/model gives — hosts outside, the Services
// (Cluster IP:port -> backends, nodePort), nodes with their Node IPs, bridge, VXLAN devices and nodePorts,
// pods on their veths, tunnels and routes between nodes — again
// whenever it changes (asked every 2 s: a pod added or deleted shows without a reload), and a packet's
// path from /api/path: each hop highlighted on the picture and told beside it, there and back. Words come
// from /api/words in the chosen language (zh by a zh browser, as the CLI by a zh locale). Keyboard: every
// pod is a button; Enter picks it as the source, then as the destination.
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>podwire</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2733; background: #f6f8fa; }
  header { padding: 10px 16px; background: #1d2733; color: #fff; display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
  header h1 { font-size: 18px; margin: 0 12px 0 0; }
  header label { display: flex; gap: 4px; align-items: center; }
  input, select, button { font: inherit; padding: 4px 6px; }
  main { display: flex; flex-wrap: wrap; gap: 12px; padding: 12px; }
  #pic { flex: 3 1 560px; min-width: 300px; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; }
  #pic svg { width: 100%; height: auto; display: block; }
  #side { flex: 2 1 320px; min-width: 280px; }
  #presets button { margin: 0 6px 6px 0; }
  ol { padding-left: 22px; } li { margin-bottom: 6px; } li .where { font-weight: 600; margin-right: 6px; }
  .node rect.box { fill: #eef3fb; stroke: #4a6fa5; } .pod rect.box { fill: #f3fbef; stroke: #4f8a3c; cursor: pointer; }
  .host rect.box { fill: #fbf3ef; stroke: #a5684a; } .service rect.box { fill: #f7f0fb; stroke: #7a4fa5; stroke-dasharray: 3 3; }
  .hop rect.box { stroke: #d1242f; stroke-width: 4; } .pick rect.box { stroke-dasharray: 6 3; stroke-width: 3; }
  .link line { stroke: #8c959f; stroke-width: 2; } .link.vxlan line { stroke-dasharray: 8 4; }
  text { font-size: 12px; fill: #1d2733; } text.name { font-size: 14px; font-weight: 600; }
  .pod:focus { outline: none; } .pod:focus rect.box { stroke-width: 3; stroke: #0969da; }
  #status { color: #57606a; margin: 6px 0; } #error { color: #d1242f; }
  /* A phone: the page keeps to the screen's width; the picture keeps its text readable and scrolls sideways in its box. */
  @media (max-width: 700px) {
    header { padding: 8px; gap: 6px; } header h1 { width: 100%; }
    header label { flex: 1 1 100%; } header input { flex: 1; min-width: 0; }
    main { padding: 6px; } #pic { flex-basis: 100%; min-width: 0; overflow-x: auto; } #side { min-width: 0; flex-basis: 100%; }
    #pic svg { width: var(--phone-width); max-width: none; }
    #presets button { min-height: 36px; }
  }
</style>
</head>
<body>
<header>
  <h1 data-w="web.title">podwire</h1>
  <label><span data-w="web.src">from</span> <input id="src" size="18" list="addrs" aria-label="source"></label>
  <label><span data-w="web.dst">to</span> <input id="dst" size="22" list="addrs" aria-label="destination"></label>
  <datalist id="addrs"></datalist>
  <label><span data-w="web.proto">protocol</span> <select id="proto"><option>tcp</option><option>udp</option><option>icmp</option></select></label>
  <button id="go" data-w="web.show">show the path</button>
  <button id="send" data-w="web.send" hidden>send it</button>
  <label><span data-w="web.lang">language</span> <select id="lang"><option value="en">English</option><option value="zh">中文</option></select></label>
</header>
<main>
  <div id="pic" aria-live="polite"></div>
  <div id="side">
    <div id="presets"></div>
    <div id="status" data-w="web.hint"></div>
    <div id="error"></div>
    <p id="sent"></p>
    <h2 id="thereTitle" data-w="web.there" hidden>there</h2><ol id="there"></ol>
    <p id="end"></p>
    <h2 id="backTitle" data-w="web.back" hidden>back</h2><ol id="back"></ol>
  </div>
</main>
<script>
(() => {
  const $ = (id) => document.getElementById(id);
  let lang = new URLSearchParams(location.search).get('lang') || (/^zh/i.test(navigator.language) ? 'zh' : 'en');
  let words = {};
  let model = null, modelText = '', path = null, picking = 'src';
  const w = (id) => words[id] || id;
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  // "192.168.50.11/24 (eth0)", "10.244.1.2/24, fd00::2/64" -> the first address alone.
  const ip0 = (s) => String(s).trim().split(/[,\\s]/)[0].replace(/\\/\\d+$/, '');

  async function loadWords() {
    words = await (await fetch('/api/words?lang=' + lang)).json();
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    $('lang').value = lang;
    for (const el of document.querySelectorAll('[data-w]')) el.textContent = w(el.dataset.w);
    presets();
  }

  function box(x, y, wd, h, cls, ns, lines, extra = '') {
    const t = lines.map((l, i) => '<text x="' + (x + 8) + '" y="' + (y + 18 + i * 16) + '"' + (i ? '' : ' class="name"') + '>' + esc(l) + '</text>').join('');
    return '<g class="' + cls + '" data-ns="' + esc(ns) + '"' + extra + '><rect class="box" x="' + x + '" y="' + y + '" width="' + wd + '" height="' + h + '" rx="6"/>' + t + '</g>';
  }

  const answers = (n, port) => ((model.nodePorts || {})[n.name] || []).includes(port);
  const everywhere = (port) => model.nodes.every((n) => answers(n, port));

  function draw() {
    if (!model) return;
    const col = 300, gap = 30, svcY = 84, svcH = 58;
    const svcs = model.services || [];
    const svcRows = Math.ceil(svcs.length / Math.max(1, model.nodes.length || 1));
    const nodeY = svcY + (svcs.length ? svcRows * (svcH + 12) + 14 : 10), nodeH = 112, podY = nodeY + nodeH + 50;
    const cols = Math.max(model.nodes.length, model.hosts.length, 1);
    // Each pod's lines: its name, eth0 and Pod IP, its veth, then its containerPorts as the rules know them
    // (where a Service's DNAT, its targetPort, or a hostPort sends) and its hostPorts.
    const linesOf = (p) => {
      const ip = ip0(p.ip);
      const hp = (model.hostPorts || {})[ip] || [];
      const cp = [...new Set([...svcs.flatMap((v) => v.backends.filter((b) => b.ip === ip && b.port).map((b) => b.port)), ...hp.map((h) => Number(h.split('→ ')[1]))])];
      return [p.name, p.ifname + ' ' + p.ip, p.hostVeth, cp.length ? 'containerPort ' + cp.join(', ') : '', hp.length ? 'hostPort ' + hp.join(', ') : ''].filter(Boolean);
    };
    const podLines = new Map(model.nodes.flatMap((n) => n.pods.map((p) => [p, linesOf(p)])));
    const podH = (lines) => 10 + lines.length * 16;
    const column = Math.max(1, ...model.nodes.map((n) => n.pods.reduce((sum, p) => sum + podH(podLines.get(p)) + 16, 0)));
    const width = gap + cols * (col + gap), height = podY + column + 20;
    // On a phone the picture is drawn at 3/4 of its size, its 12px text at 9px, and scrolls sideways (see the style).
    let s = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + width + ' ' + height + '" style="--phone-width: ' + Math.round(width * 0.75) + 'px" role="img" aria-label="' + esc(model.title) + '">';
    const at = {};
    model.nodes.forEach((n, i) => (at[n.name] = gap + i * (col + gap)));
    for (const l of model.links) {
      const a = at[l.from], b = at[l.to];
      if (a === undefined || b === undefined || a >= b) continue;
      const y = nodeY + nodeH / 2;
      s += '<g class="link ' + l.mode + '" data-kind="link"><line x1="' + (a + col) + '" y1="' + y + '" x2="' + b + '" y2="' + y + '"/><text x="' + ((a + col + b) / 2 - 24) + '" y="' + (y - 6) + '">' + esc(l.mode) + '</text></g>';
    }
    model.hosts.forEach((h, i) => { s += box(gap + i * (col + gap), 16, col, 50, 'host', h.ns || h.name, [h.name, h.ips.join(', ')], ' data-kind="host" data-name="' + esc(h.name) + '"'); });
    // The Service layer: Cluster IPs no interface owns, each with where kube-proxy's DNAT sends it.
    const per = Math.max(1, model.nodes.length);
    svcs.forEach((v, i) => {
      const x = gap + (i % per) * (col + gap), y = svcY + Math.floor(i / per) * (svcH + 12);
      const vip = v.clusterIP.includes(':') ? '[' + v.clusterIP + ']:' + v.port : v.clusterIP + ':' + v.port;
      const to = v.backends.map((b) => (b.ip.includes(':') ? '[' + b.ip + ']' : b.ip) + (b.port ? ':' + b.port : '')).join(', ');
      // An externalTrafficPolicy Local nodePort: only the nodes with a backend answer it; named here.
      const only = v.nodePort && everywhere(v.nodePort) ? [] : model.nodes.filter((n) => answers(n, v.nodePort)).map((n) => n.name);
      s += box(x, y, col, svcH, 'service', 'svc:' + v.name, [v.name, vip + ' → ' + to, v.nodePort ? 'nodePort ' + v.nodePort + (only.length ? ' (' + only.join(', ') + ')' : '') : ''].filter(Boolean),
        ' data-kind="service" data-name="' + esc(v.name) + '" data-vip="' + esc(vip) + '" data-nodeport="' + (v.nodePort || '') + '"');
    });
    model.nodes.forEach((n) => {
      const x = at[n.name];
      const np = (model.nodePorts || {})[n.name] || [];
      const lines = [n.name, ...n.nodeIPs.slice(0, 2), n.bridge ? n.bridge.name + ' ' + n.bridge.addrs.join(' ') : '', n.vxlans.map((v) => v.name + ' VNI ' + v.vni).join(', '), np.length ? 'nodePort ' + np.join(', ') : ''].filter(Boolean);
      s += box(x, nodeY, col, nodeH, 'node', n.ns, lines, ' data-kind="node" data-name="' + esc(n.name) + '" data-ip="' + esc(ip0(n.nodeIPs[0] || '')) + '"');
      let y = podY;
      n.pods.forEach((p) => {
        const lines = podLines.get(p);
        s += '<line x1="' + (x + col / 2) + '" y1="' + (nodeY + nodeH) + '" x2="' + (x + col / 2) + '" y2="' + y + '" stroke="#c8d1dc"/>';
        s += box(x + 20, y, col - 40, podH(lines), 'pod', p.ns, lines, ' data-kind="pod" data-name="' + esc(p.name) + '" data-ip="' + esc(ip0(p.ip)) + '" tabindex="0" role="button"');
        y += podH(lines) + 16;
      });
    });
    s += '</svg>';
    $('pic').innerHTML = s;
    for (const g of document.querySelectorAll('.pod, .node')) {
      const pick = () => { $(picking).value = g.dataset.ip; picking = picking === 'src' ? 'dst' : 'src'; if (picking === 'src') show(); else mark(); };
      g.addEventListener('click', pick);
      g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
    }
    const opts = [...model.nodes.flatMap((n) => [...n.nodeIPs.map(ip0), ...n.pods.map((p) => ip0(p.ip))]), ...model.hosts.flatMap((h) => h.ips.map(ip0))];
    $('addrs').innerHTML = opts.map((o) => '<option value="' + esc(o) + '">').join('');
    mark();
  }

  function mark() {
    const hops = new Set((path ? [...path.hops, ...path.reply] : []).map((h) => h.ns));
    // A Service is on the path when it was asked for: its Cluster IP:port, or a node's address at its nodePort.
    const asked = path ? (path.dst.includes(':') ? '[' + path.dst + ']' : path.dst) + ':' + (path.port || '') : '';
    const nodeIPs = model ? model.nodes.flatMap((n) => n.nodeIPs.map(ip0)) : [];
    for (const g of document.querySelectorAll('[data-ns]')) {
      const svc = g.dataset.kind === 'service' && path && (g.dataset.vip === asked || (nodeIPs.includes(path.dst) && String(path.port) === g.dataset.nodeport));
      g.classList.toggle('hop', hops.has(g.dataset.ns) || !!svc);
      g.classList.toggle('pick', g.dataset.ip !== undefined && (g.dataset.ip === $('src').value || g.dataset.ip === $('dst').value));
    }
  }

  function presets() {
    const el = $('presets');
    el.innerHTML = '';
    if (!model) return;
    const pods = model.nodes.flatMap((n) => n.pods.map((p) => ({ node: n.name, ip: ip0(p.ip) })));
    const add = (id, src, dst, proto = 'tcp') => {
      if (!src || !dst) return;
      const b = document.createElement('button');
      b.textContent = w(id);
      b.dataset.preset = id;
      b.onclick = () => { $('src').value = src; $('dst').value = dst; $('proto').value = proto; show(); };
      el.appendChild(b);
    };
    const a = pods[0];
    add('web.preset.sameNode', a && a.ip, (pods.find((p) => a && p.node === a.node && p.ip !== a.ip) || {}).ip);
    add('web.preset.acrossNodes', a && a.ip, (pods.find((p) => a && p.node !== a.node) || {}).ip);
    const n2 = model.nodes[1];
    add('web.preset.nodeToPod', n2 && ip0(n2.nodeIPs[0] || ''), a && a.ip);
    const svcs = model.services || [];
    const v = svcs[0];
    add('web.preset.podToService', a && a.ip, v && (v.clusterIP.includes(':') ? '[' + v.clusterIP + ']' : v.clusterIP) + ':' + v.port);
    const np = svcs.find((x) => x.nodePort && everywhere(x.nodePort));
    const out = model.hosts.find((h) => h.name === 'outside');
    const outIP = out && ip0(out.ips[0] || '');
    const last = model.nodes[model.nodes.length - 1];
    const lastIP = last && ip0(last.nodeIPs[0] || '');
    add('web.preset.outsideToNodePort', outIP, np && lastIP + ':' + np.nodePort);
    // externalTrafficPolicy Local: a nodePort only the backend's node answers.
    const loc = svcs.find((x) => x.nodePort && !everywhere(x.nodePort));
    const localNode = loc && model.nodes.find((n) => answers(n, loc.nodePort));
    add('web.preset.outsideToLocal', outIP, localNode && ip0(localNode.nodeIPs[0] || '') + ':' + loc.nodePort);
    // A hostPort: the node's address at that port, DNATed by podwire to the pod.
    const hpIP = Object.keys(model.hostPorts || {})[0];
    const hpNode = hpIP && model.nodes.find((n) => n.pods.some((p) => ip0(p.ip) === hpIP));
    const hpPort = hpIP && String(model.hostPorts[hpIP][0]).split('/')[0].split(':').pop();
    add('web.preset.outsideToHostPort', outIP, hpNode && ip0(hpNode.nodeIPs[0] || '') + ':' + hpPort);
    add('web.preset.pingClusterIP', a && a.ip, v && v.clusterIP, 'icmp');
    add('web.preset.podToOutside', a && a.ip, outIP && outIP + ':8082');
  }

  function hopItems(list, hops) {
    list.innerHTML = hops.map((h) => '<li><span class="where">' + esc(h.where) + '</span>' + esc(h.text) + '</li>').join('');
  }

  function showPath(p) {
    path = p;
    hopItems($('there'), path ? path.hops : []);
    hopItems($('back'), path ? path.reply : []);
    $('thereTitle').hidden = !path; $('backTitle').hidden = !path || !path.reply.length;
    $('end').textContent = path ? path.end : '';
    mark();
  }

  const query = () => new URLSearchParams({ src: $('src').value.trim(), dst: $('dst').value.trim(), proto: $('proto').value, lang });

  async function show() {
    const r = await fetch('/api/path?' + query());
    const body = await r.json();
    $('error').textContent = r.ok ? '' : body.error;
    $('sent').textContent = '';
    showPath(r.ok ? body : null);
  }

  // In a lab with sending on: the packet really sent, what came back, and the path with its conntrack entries.
  async function sendIt() {
    const r = await fetch('/api/send?' + query(), { method: 'POST' });
    const body = await r.json();
    $('error').textContent = r.ok ? '' : body.error;
    if (!r.ok) return;
    // An HTTP answer's body (after its headers), first line; a ping's word as it is.
    const first = (body.answer.split(/\\r?\\n\\r?\\n/)[1] || body.answer).trim().split('\\n')[0];
    $('sent').textContent = body.arrived ? w('web.arrived') + ' ' + first : w('web.noAnswer');
    $('sent').dataset.arrived = String(body.arrived);
    showPath(body.path);
  }

  async function refresh() {
    try {
      const text = await (await fetch('/api/model')).text();
      if (text !== modelText) { modelText = text; model = JSON.parse(text); $('send').hidden = !model.send; draw(); presets(); }
    } catch (e) { /* the server is restarting: the next round asks again */ }
  }

  $('go').onclick = show;
  $('send').onclick = sendIt;
  for (const id of ['src', 'dst']) $(id).addEventListener('keydown', (e) => { if (e.key === 'Enter') show(); });
  $('lang').onchange = async () => { lang = $('lang').value; await loadWords(); if (path) await show(); };
  loadWords().then(refresh);
  setInterval(refresh, 2000);
})();
</script>
</body>
</html>
`;
