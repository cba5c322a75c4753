// npm run build: dist/podwire.mjs (esbuild ESM bundle, runs with node) and dist/podwire (single-file
// executable compiled from that bundle by Bun, from the pinned @oven/bun-linux-x64 package).
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const require = createRequire(import.meta.url);

const common = {
  absWorkingDir: root,
  entryPoints: ['src/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // pino and yargs' helpers are CommonJS and call require(); give the ESM bundle one.
  banner: { js: 'import { createRequire as __podwireRequire } from "node:module"; const require = __podwireRequire(import.meta.url);' },
  define: { __PODWIRE_VERSION__: JSON.stringify(pkg.version) },
  // pino's worker-thread transports are never used (we log synchronously to a file): keep them out of
  // start-up, which is most of the plugin's cost.
  loader: { '.conflist': 'json' },
  alias: { 'thread-stream': './scripts/no-thread-stream.cjs' },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
};

// One file for node (dist/podwire.mjs); and split at the dynamic imports for Bun: the CLI and the
// Kubernetes client (megabytes) then stay out of the plugin's start-up even inside the single binary
// (measured: +5 ms per plugin call without the split).
await esbuild.build({ ...common, outfile: 'dist/podwire.mjs' });
rmSync(join(root, 'dist', 'split'), { recursive: true, force: true });
const { banner: _nodeOnly, ...bunCommon } = common;
await esbuild.build({ ...bunCommon, outdir: 'dist/split', splitting: true, entryNames: 'podwire' });

// A CNI plugin runs in whatever directory the runtime has: never read a .env or bunfig.toml from there.
const bun = join(dirname(require.resolve('@oven/bun-linux-x64/package.json')), 'bin', 'bun');
execFileSync(bun, ['build', '--compile', '--bytecode', '--splitting', '--format=esm', '--target=bun-linux-x64', '--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig', 'dist/split/podwire.js', '--outfile', 'dist/podwire'], {
  cwd: root,
  stdio: ['ignore', 'ignore', 'inherit'],
});
process.stderr.write('built dist/podwire.mjs and dist/podwire\n');
