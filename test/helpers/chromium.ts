// Renders an SVG in headless Chromium (Debian's chromium) and reports, for every element carrying
// data-kind (node, pod, link, ...), what the browser laid out: its box, whether it lies inside the picture,
// whether it is on top at its own centre (not hidden under something else) and how wide its texts are (0
// when no glyph was drawn). The page measures itself; --dump-dom hands the result back.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Shown {
  name: string;
  text: string;
  inside: boolean;
  onTop: boolean | null;
  width: number;
  height: number;
  textWidths: number[];
}

const MEASURE = `
const out = {};
const pic = document.querySelector('svg').getBoundingClientRect();
for (const g of document.querySelectorAll('[data-kind]')) {
  const r = g.getBoundingClientRect();
  const box = g.querySelector('rect');
  let onTop = null;
  if (box) {
    const b = box.getBoundingClientRect();
    const el = document.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2);
    onTop = !!el && g.contains(el);
  }
  (out[g.dataset.kind] ??= []).push({
    name: g.dataset.name ?? g.dataset.mode ?? '',
    text: g.textContent.replace(/\\s+/g, ' ').trim(),
    inside: r.left >= pic.left - 0.5 && r.right <= pic.right + 0.5 && r.top >= pic.top - 0.5 && r.bottom <= pic.bottom + 0.5,
    onTop,
    width: r.width,
    height: r.height,
    textWidths: [...g.querySelectorAll('text')].map((t) => t.getComputedTextLength()),
  });
}
document.getElementById('result').textContent = JSON.stringify(out);
`;

/** The flags a root, offline, headless Chromium needs here (see the machine notes). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function renderSvg(svg: string, screenshot?: string): Record<string, Shown[]> {
  const dir = mkdtempSync(join(tmpdir(), 'podwire-chromium-'));
  try {
    const [, w = '1200', h = '900'] = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg) ?? [];
    const page = join(dir, 'page.html');
    writeFileSync(
      page,
      `<!doctype html><html><body style="margin:0">${svg}<pre id="result"></pre><script>${MEASURE}</script></body></html>`,
    );
    const run = (extra: string[]) =>
      execFileSync(
        'chromium',
        [...CHROMIUM_FLAGS, `--user-data-dir=${join(dir, 'profile')}`, `--window-size=${w},${Number(h) + 100}`, ...extra, `file://${page}`],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 60_000,
        },
      );
    const dom = run(['--dump-dom']);
    if (screenshot) run([`--screenshot=${screenshot}`]);
    const m = /<pre id="result">([^<]*)<\/pre>/.exec(dom);
    if (!m?.[1]) throw new Error(`chromium did not run the measuring script: ${dom.slice(0, 300)}`);
    return JSON.parse(m[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
