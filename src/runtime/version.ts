// Replaced at build time by esbuild (see scripts/build.mjs); "dev" when run from source.
declare const __PODWIRE_VERSION__: string | undefined;
export const VERSION = typeof __PODWIRE_VERSION__ === 'string' ? __PODWIRE_VERSION__ : 'dev';
