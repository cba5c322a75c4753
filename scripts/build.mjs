// @ts-check
// npm run build: dist/podwire.mjs (esbuild ESM bundle, runs with node) and dist/podwire (single-file
// executable compiled from that bundle by Bun, from the pinned @oven/bun-linux-x64 package).
// The benchmark imports compileBun() to build its do-nothing floor binary exactly like dist/podwire.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/**
 * The Bun flags of dist/podwire, chosen by measurement (README, "The per-pod path"): --bytecode halves
 * start-up (without it ADD took 1.7x as long); --compile-jit-policy, --compile-exec-argv=--smol,
 * --no-optimize-bytecode and --bytecode-order made no difference beyond the machine's noise. A CNI plugin
 * runs in whatever directory the runtime has: never read a .env or bunfig.toml from there.
 */
const BUN_FLAGS = [
  'build',
  '--compile',
  '--bytecode',
  '--splitting',
  '--format=esm',
  '--target=bun-linux-x64',
  '--no-compile-autoload-dotenv',
  '--no-compile-autoload-bunfig',
];

/**
 * Compiles an ESM entry (and the chunks beside it) into a single-file executable with dist/podwire's flags.
 * @param {string} entry
 * @param {string} outfile
 */
export function compileBun(entry, outfile) {
  const bun = join(dirname(require.resolve('@oven/bun-linux-x64/package.json')), 'bin', 'bun');
  execFileSync(bun, [...BUN_FLAGS, entry, '--outfile', outfile], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}

async function build() {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  /** @type {import('esbuild').BuildOptions} */
  const common = {
    absWorkingDir: root,
    entryPoints: ['src/main.ts'],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    define: { __PODWIRE_VERSION__: JSON.stringify(pkg.version) },
    loader: { '.conflist': 'json' },
    // pino's worker-thread transports are never used (we log synchronously to a file): keep them out.
    alias: { 'thread-stream': './scripts/no-thread-stream.cjs' },
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'warning',
  };
  // One file for node (dist/podwire.mjs). pino and yargs' helpers are CommonJS and call require(): give
  // node's ESM bundle one (Bun provides require in ESM itself).
  await esbuild.build({
    ...common,
    outfile: 'dist/podwire.mjs',
    banner: { js: 'import { createRequire as __podwireRequire } from "node:module"; const require = __podwireRequire(import.meta.url);' },
  });
  // For Bun, split at the dynamic imports: the plugin's verbs, the CLI and the Kubernetes client
  // (megabytes) each load only when chosen, so VERSION and the verbs carry none of the rest.
  rmSync(join(root, 'dist', 'split'), { recursive: true, force: true });
  await esbuild.build({ ...common, outdir: 'dist/split', splitting: true, entryNames: 'podwire' });
  compileBun('dist/split/podwire.js', 'dist/podwire');
  process.stderr.write('built dist/podwire.mjs and dist/podwire\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await build();
