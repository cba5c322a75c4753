// @ts-check
// npm run build: dist/podwire.mjs (esbuild ESM bundle, runs with node) and dist/podwire (single-file
// executable compiled from that bundle by Bun) for this machine's architecture.
// npm run build:all (`--all`): also dist/podwire-linux-amd64 and dist/podwire-linux-arm64, one per
// architecture, whatever this machine is.
//
// Each binary is Bun's runtime with the bundle appended: linux-x64-baseline for x86-64 (it needs no AVX2:
// older CPUs and QEMU's default CPU model run it; measured against the AVX2 runtime on the per-pod path,
// README "Architectures"), linux-aarch64 for arm64. The runtimes are npm packages pinned in package.json
// (optionalDependencies, so npm installs the one of this machine and skips the others) and their
// tarballs' integrity in package-lock.json; a runtime of another architecture is fetched from the npm
// registry with `npm pack` and checked against that integrity. Nothing comes from anywhere else (Bun's own
// cross-compilation would download from GitHub: --compile-executable-path points it at the package's).
// The benchmark imports compileBun() to build its do-nothing floor binary exactly like dist/podwire.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
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
  '--no-compile-autoload-dotenv',
  '--no-compile-autoload-bunfig',
];

/** The architectures a binary is made for: Kubernetes' name (GOARCH, kubernetes.io/arch), Bun's target and runtime package. */
export const ARCHES = /** @type {const} */ ({
  amd64: { target: 'bun-linux-x64-baseline', pkg: '@oven/bun-linux-x64-baseline' },
  arm64: { target: 'bun-linux-arm64', pkg: '@oven/bun-linux-aarch64' },
});

/** This machine's architecture, as Kubernetes names it. */
export const hostArch = () => (process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined);

/**
 * The bun binary of a runtime package: the installed one (this machine's architecture), else the tarball
 * from the npm registry, checked against the integrity package-lock.json pins, unpacked under .cache/.
 * @param {string} pkg
 */
export function runtimeBinary(pkg) {
  try {
    return join(dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'bun');
  } catch {
    // not installed here: another architecture's
  }
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')).packages?.[`node_modules/${pkg}`];
  if (!lock?.integrity) throw new Error(`${pkg} is not pinned in package-lock.json (npm install --save-optional ${pkg})`);
  const dir = join(root, '.cache', 'bun', `${pkg.replace('/', '+')}-${lock.version}`);
  const bin = join(dir, 'package', 'bin', 'bun');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', `${pkg}@${lock.version}`, '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8' }),
  );
  const tgz = join(dir, packed.filename);
  const [algo, want] = lock.integrity.split('-');
  const got = createHash(algo).update(readFileSync(tgz)).digest('base64');
  if (got !== want) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${pkg}@${lock.version}: the tarball's ${algo} is not the one package-lock.json pins`);
  }
  execFileSync('tar', ['-xzf', tgz, '-C', dir, 'package/bin/bun']);
  return bin;
}

/** The bun that compiles: this machine's (any runtime of this architecture can compile for every target). */
function compiler() {
  const arch = hostArch();
  if (!arch) throw new Error(`no Bun runtime for ${process.arch}: podwire's binaries are built on x86-64 or arm64`);
  return runtimeBinary(ARCHES[arch].pkg);
}

/**
 * Compiles an ESM entry (and the chunks beside it) into a single-file executable with dist/podwire's flags.
 * @param {string} entry
 * @param {string} outfile
 * @param {keyof typeof ARCHES} [arch] this machine's by default
 */
export function compileBun(entry, outfile, arch = hostArch()) {
  if (!arch) throw new Error(`no Bun runtime for ${process.arch}`);
  const { target, pkg } = ARCHES[arch];
  const flags = [...BUN_FLAGS, `--target=${target}`, `--compile-executable-path=${runtimeBinary(pkg)}`];
  execFileSync(compiler(), [...flags, entry, '--outfile', outfile], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
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
  // Also under its architecture's name: what deploy/Containerfile copies for the image's platform.
  const host = /** @type {keyof typeof ARCHES} */ (hostArch());
  copyFileSync(join(root, 'dist', 'podwire'), join(root, 'dist', `podwire-linux-${host}`));
  const made = ['dist/podwire.mjs', 'dist/podwire', `dist/podwire-linux-${host}`];
  if (process.argv.includes('--all')) {
    for (const arch of /** @type {(keyof typeof ARCHES)[]} */ (Object.keys(ARCHES))) {
      if (arch === host) continue;
      compileBun('dist/split/podwire.js', `dist/podwire-linux-${arch}`, arch);
      made.push(`dist/podwire-linux-${arch}`);
    }
  }
  process.stderr.write(`built ${made.join(', ')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await build();
