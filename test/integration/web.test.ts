// `podwire web` against a running lab, in Debian's headless Chromium over the DevTools protocol: the page
// shows every node and pod with the lab's addresses; a preset and a click on two pods show exactly the
// hops `path` reports, highlighted on the picture; the zh switch changes the page's words and the hops';
// on a phone's width the page keeps to the screen; a pod deleted in the lab leaves the page, and a
// Service's moved backend shows on it, without a reload; the server refuses what is not local.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bringUp } from '../../src/lab/index.js';
import { Lab, type LabPod } from '../../src/lab/lab.js';
import { labDown } from '../../src/lab/netns.js';
import { BIN, requireRoot } from '../helpers/netns.js';
import { until } from '../helpers/wait.js';
import { type Page, openPage } from '../helpers/cdp.js';
import { type ServiceLab, addServices, proveEphemeral } from '../../src/lab/services.js';

const PORT = 19480;
const URL_ = `http://127.0.0.1:${PORT}/`;
let lab: Lab;
let server: ChildProcess;
let page: Page;
let extra: LabPod;
let svc: ServiceLab;

beforeAll(async () => {
  requireRoot();
  labDown();
  lab = Lab.create(BIN, 'vxlan', 2);
  await bringUp(lab);
  for (const n of lab.nodes) for (const name of ['a', 'b']) await lab.addPod(n, name);
  svc = await addServices(lab);
  extra = await lab.addPod(lab.nodes[1]!, 'extra');
  server = spawn(BIN, ['web', '--lab', '--send', '--addr', `127.0.0.1:${PORT}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  server.stderr!.on('data', (d) => (err += d));
  await until(() => err.includes(URL_), 10_000, 'podwire web to listen');
  page = await openPage(`${URL_}?lang=en`);
  await page.waitFor(`document.querySelectorAll('[data-kind=pod]').length > 0`);
}, 120_000);

afterAll(async () => {
  server?.kill();
  try {
    await page?.close();
  } finally {
    labDown();
  }
});

const podIp = (p: LabPod) => p.ip;

describe('podwire web', () => {
  it('shows every node with its Node IP and every pod with its Pod IP and veth, from live state', async () => {
    const shown = await page.eval<{ nodes: string[]; pods: { name: string; text: string }[] }>(`({
      nodes: [...document.querySelectorAll('[data-kind=node]')].map((g) => g.textContent),
      pods: [...document.querySelectorAll('[data-kind=pod]')].map((g) => ({ name: g.dataset.name, text: g.textContent })),
    })`);
    for (const n of lab.nodes) expect(shown.nodes.find((t) => t.startsWith(n.name))).toContain(n.nodeIP);
    for (const p of lab.pods) {
      const g = shown.pods.find((x) => x.name === p.ns.slice('pwlab-'.length));
      expect(g?.text, p.ns).toContain(p.ip);
      expect(g?.text).toContain(p.veth);
    }
  });

  it('two pods clicked: exactly the hops path reports, each highlighted on the picture, there and back', async () => {
    const [a, , c] = lab.pods as [LabPod, LabPod, LabPod];
    await page.eval(`document.querySelector('[data-ip="${podIp(a)}"]').dispatchEvent(new MouseEvent('click'))`);
    await page.eval(`document.querySelector('[data-ip="${podIp(c)}"]').dispatchEvent(new MouseEvent('click'))`);
    await page.waitFor(`document.querySelectorAll('#there li').length > 0`);
    const cli = JSON.parse(spawnSync(BIN, ['path', podIp(a), podIp(c), '--lab', '--json'], { encoding: 'utf8' }).stdout);
    const onPage = await page.eval<{ there: string[]; back: string[]; lit: string[]; drawn: string[] }>(`({
      there: [...document.querySelectorAll('#there li')].map((li) => li.textContent),
      back: [...document.querySelectorAll('#back li')].map((li) => li.textContent),
      lit: [...document.querySelectorAll('.hop')].map((g) => g.dataset.ns),
      drawn: [...document.querySelectorAll('[data-ns]')].map((g) => g.dataset.ns),
    })`);
    expect(onPage.there).toEqual(cli.hops.map((h: { where: string; text: string }) => h.where + h.text));
    expect(onPage.back).toEqual(cli.reply.map((h: { where: string; text: string }) => h.where + h.text));
    // Lit: exactly the drawn namespaces the hops pass (the underlay's bridge is not drawn).
    const passed = new Set(cli.hops.concat(cli.reply).map((h: { ns: string }) => h.ns));
    expect([...new Set(onPage.lit)].sort()).toEqual([...new Set(onPage.drawn.filter((ns) => passed.has(ns)))].sort());
    expect(onPage.lit).toContain(a.ns);
    expect(onPage.lit).toContain(c.ns);
  });

  it("the Service layer: each Cluster IP:port with its backend's Pod IP:targetPort, nodePorts on their nodes", async () => {
    const shown = await page.eval<{ name: string; text: string }[]>(
      `[...document.querySelectorAll('[data-kind=service]')].map((g) => ({ name: g.dataset.name, text: g.textContent }))`,
    );
    for (const v of svc.services) {
      const g = shown.find((x) => x.name === `lab/${v.name}:http`);
      expect(g?.text, v.name).toContain(`${v.clusterIP}:${v.port} → ${v.backend.ip}:${v.targetPort}`);
      // The backend's pod: its containerPort, the targetPort the DNAT sends to.
      expect(await page.eval<string>(`document.querySelector('[data-kind=pod][data-ip="${v.backend.ip}"]').textContent`)).toContain(
        `containerPort ${v.targetPort}`,
      );
      if (v.nodePort && !v.externalTrafficPolicy) expect(g?.text).toMatch(new RegExp(`nodePort ${v.nodePort}$`));
      // externalTrafficPolicy Local: answered only where its backend runs, and the box says where.
      if (v.externalTrafficPolicy === 'Local') expect(g?.text).toContain(`nodePort ${v.nodePort} (${v.backend.node.name})`);
    }
    const nodeText = await page.eval<string>(`document.querySelector('[data-kind=node][data-name=node2]').textContent`);
    expect(nodeText).toContain('nodePort 30080');
  });

  it('outside → nodePort: exactly the hops path reports, the DNAT to the backend, the Service lit', async () => {
    await page.eval(
      `[...document.querySelectorAll('#presets button')].find((b) => b.dataset.preset === 'web.preset.outsideToNodePort').click()`,
    );
    await page.waitFor(`document.getElementById('dst').value.endsWith(':30080') && document.querySelectorAll('#there li').length > 0`);
    const [src, dst] = await page.eval<[string, string]>(`[document.getElementById('src').value, document.getElementById('dst').value]`);
    expect(src).toBe('192.168.50.250');
    const cli = JSON.parse(spawnSync(BIN, ['path', src, dst, '--lab', '--json'], { encoding: 'utf8' }).stdout);
    await page.waitFor(`document.querySelectorAll('#there li').length === ${cli.hops.length}`);
    const there = await page.eval<string[]>(`[...document.querySelectorAll('#there li')].map((li) => li.textContent)`);
    expect(there).toEqual(cli.hops.map((h: { where: string; text: string }) => h.where + h.text));
    const np = svc.services.find((v) => v.nodePort === 30080)!;
    expect(there.join('\n')).toContain(`${np.backend.ip}:8080`);
    // The rewrite told with the Service's own ports: nodePort -> port (of the Cluster IP) -> targetPort.
    expect(there.join('\n')).toContain(
      `Service lab/${np.name}:http: nodePort 30080 -> port 80 of Cluster IP ${np.clusterIP} -> targetPort 8080`,
    );
    const lit = await page.eval<string[]>(`[...document.querySelectorAll('[data-kind=service].hop')].map((g) => g.dataset.name)`);
    expect(lit).toEqual(['lab/web-nodeport:http']);
    // The READMEs' picture is this page: PODWIRE_SCREENSHOT=docs/web.png npx vitest run test/integration/web.test.ts
    if (process.env.PODWIRE_SCREENSHOT) await page.screenshot(process.env.PODWIRE_SCREENSHOT);
  });

  it('send it: outside → nodePort really arrives (the backend answers), and the reply is the live conntrack entry', async () => {
    await page.eval(`document.getElementById('send').click()`);
    await page.waitFor(`document.getElementById('sent').textContent !== ''`, 15_000);
    const backend = svc.services.find((v) => v.nodePort === 30080)!.backend;
    const sent = await page.eval<{ text: string; arrived: string; back: string }>(`({
      text: document.getElementById('sent').textContent,
      arrived: document.getElementById('sent').dataset.arrived,
      back: [...document.querySelectorAll('#back li')].map((li) => li.textContent).join('\\n'),
    })`);
    expect(sent.arrived).toBe('true');
    expect(sent.text).toContain(`hello from ${backend.name} on ${backend.node.name}`);
    expect(sent.back).toContain('conntrack (live entry');
    expect(sent.back).not.toContain('predicted');
  });

  it("the articles' other questions as presets: Local, hostPort, a Cluster IP pinged, pod → outside; each as path says", async () => {
    const ids = await page.eval<string[]>(`[...document.querySelectorAll('#presets button')].map((b) => b.dataset.preset)`);
    for (const id of ['outsideToLocal', 'outsideToHostPort', 'pingClusterIP', 'podToOutside']) expect(ids).toContain(`web.preset.${id}`);
    const webLast = svc.services.find((v) => v.nodePort === 30080)!.backend;
    const pods = await page.eval<string>(`document.querySelector('[data-ip="${webLast.ip}"]').textContent`);
    expect(pods).toContain('containerPort 8080');
    expect(pods).toContain('hostPort 8081/tcp → 8080');
    for (const id of ['outsideToLocal', 'outsideToHostPort', 'pingClusterIP', 'podToOutside']) {
      await page.eval(
        `(document.getElementById('end').textContent = '', [...document.querySelectorAll('#presets button')].find((b) => b.dataset.preset === 'web.preset.${id}').click())`,
      );
      await page.waitFor(`document.getElementById('end').textContent !== ''`);
      const [src, dst, proto, end, there] = await page.eval<string[]>(
        `['src', 'dst', 'proto', 'end'].map((x) => document.getElementById(x).value ?? document.getElementById(x).textContent).concat([[...document.querySelectorAll('#there li')].map((li) => li.textContent).join('\\n')])`,
      );
      const cli = JSON.parse(spawnSync(BIN, ['path', src!, dst!, '--lab', '--json', '--proto', proto!], { encoding: 'utf8' }).stdout);
      expect(there, id).toBe(cli.hops.map((h: { where: string; text: string }) => h.where + h.text).join('\n'));
      expect(end, id).toBe(cli.end);
      if (id === 'outsideToHostPort') expect(there).toContain(`${webLast.ip}:8080`);
      if (id === 'outsideToLocal') {
        const local = svc.services.find((v) => v.externalTrafficPolicy === 'Local')!;
        expect(dst).toBe(`${local.backend.node.nodeIP}:${local.nodePort}`);
      }
    }
  });

  it('the zh switch changes every word of the page and the hops', async () => {
    await page.eval(`(document.getElementById('lang').value = 'zh', document.getElementById('lang').dispatchEvent(new Event('change')))`);
    await page.waitFor(`document.getElementById('go').textContent === '显示路径'`);
    await page.waitFor(`[...document.querySelectorAll('#there li')].some((li) => /[\\u4e00-\\u9fff]/.test(li.textContent))`);
    const words = await page.eval<string[]>(`[...document.querySelectorAll('[data-w]')].map((e) => e.textContent)`);
    for (const x of words) expect(x, x).toMatch(/[\u4e00-\u9fff]/);
    const presets = await page.eval<string[]>(`[...document.querySelectorAll('#presets button')].map((b) => b.textContent)`);
    expect(presets.length).toBeGreaterThan(1);
    for (const x of presets) expect(x).toMatch(/[\u4e00-\u9fff]/);
  });

  it('on a phone: the page keeps to the screen, its controls on it, the picture readable and scrolled in its box', async () => {
    await page.emulate({ width: 390, height: 844, mobile: true });
    try {
      await page.waitFor(`window.innerWidth === 390`);
      const m = await page.eval<{
        page: number;
        inner: number;
        outside: string[];
        svg: number;
        view: number;
        pic: [number, number];
      }>(`(() => {
        const svg = document.querySelector('#pic svg');
        const pic = document.getElementById('pic');
        const out = [...document.querySelectorAll('header input, header select, header button:not([hidden]), #presets button, #side')]
          .filter((e) => { const r = e.getBoundingClientRect(); return r.left < 0 || r.right > innerWidth + 0.5; })
          .map((e) => e.id || e.dataset.preset || e.tagName);
        return { page: document.documentElement.scrollWidth, inner: innerWidth, outside: out,
          svg: svg.getBoundingClientRect().width, view: svg.viewBox.baseVal.width, pic: [pic.scrollWidth, pic.clientWidth] };
      })()`);
      expect(m.page).toBeLessThanOrEqual(m.inner); // no sideways scrolling of the page itself
      expect(m.outside).toEqual([]);
      // The picture's 12px text is drawn at 9px or more, and the picture scrolls inside its own box.
      expect((12 * m.svg) / m.view).toBeGreaterThanOrEqual(9);
      expect(m.pic[0]).toBeGreaterThan(m.pic[1]);
      // A pod tapped is still picked.
      const ip = podIp(lab.pods[0]!);
      await page.eval(
        `(document.getElementById('src').value = '', document.querySelector('[data-ip="${ip}"]').dispatchEvent(new MouseEvent('click')))`,
      );
      expect(await page.eval<string>(`document.getElementById('src').value || document.getElementById('dst').value`)).toBe(ip);
    } finally {
      await page.emulate(undefined);
    }
  });

  it('a pod deleted in the lab leaves the page within a few seconds, without a reload', async () => {
    const before = await page.eval<number>(`document.querySelectorAll('[data-kind=pod]').length`);
    await page.eval(`window.__same = true`);
    await lab.delPod(extra);
    await page.waitFor(`!document.querySelector('[data-ip="${podIp(extra)}"]')`, 8000);
    expect(await page.eval<number>(`document.querySelectorAll('[data-kind=pod]').length`)).toBe(before - 1);
    expect(await page.eval<boolean>(`window.__same === true`)).toBe(true); // the same document: no reload
  });

  it("a backend moved (its pod replaced, kube-proxy's rules following) shows on its Service without a reload", async () => {
    const v = svc.services[1]!;
    const old = v.backend.ip;
    const checks = await proveEphemeral(lab, svc);
    expect(checks.length).toBeGreaterThan(0);
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(v.backend.ip).not.toBe(old);
    const box = `(document.querySelector('[data-kind=service][data-name="lab/${v.name}:http"]')?.textContent ?? '')`;
    await page.waitFor(`${box}.includes('→ ${v.backend.ip}:${v.targetPort}')`, 8000);
    expect(await page.eval<string>(box)).not.toContain(`${old}:`);
  });

  it('refuses a non-local address to listen on, and a bad address or protocol in a request', async () => {
    const r = spawnSync(BIN, ['web', '--addr', '0.0.0.0:19481'], { encoding: 'utf8', timeout: 10_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/loopback address only/);
    // Sending only in a lab: on a node (--no-lab) it is refused before anything listens.
    const s2 = spawnSync(BIN, ['web', '--no-lab', '--send', '--addr', '127.0.0.1:19482'], { encoding: 'utf8', timeout: 10_000 });
    expect(s2.status).not.toBe(0);
    expect(s2.stderr).toMatch(/--send: only in a lab/);
    const bad = await fetch(`${URL_}api/path?src=10.0.0.1%3Brm&dst=x`);
    expect(bad.status).toBe(400);
    expect((await fetch(`${URL_}api/path?src=1.1.1.1&dst=1.1.1.2&proto=sctp`)).status).toBe(400);
    expect((await fetch(URL_, { method: 'POST' })).status).toBe(405);
  });
});
