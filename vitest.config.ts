import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Conflists are JSON that the build bundles into the binary (esbuild loader "json"); the same here.
  plugins: [
    {
      name: 'conflist-as-json',
      transform: (code, id) => (id.endsWith('.conflist') ? { code: `export default ${code};`, map: null } : undefined),
    },
  ],
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests make network namespaces and spawn many processes: one file at a time keeps
    // a 2-core machine responsive and failures readable.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    // English unless a test asks for Chinese (--lang zh): a machine's zh locale must not change what the
    // tests read.
    env: { LANG: 'C.UTF-8', LC_ALL: '', LC_MESSAGES: '' },
  },
});
