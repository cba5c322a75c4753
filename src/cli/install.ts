// `podwire install`: puts this binary where runtimes look for CNI plugins (as podwire and podwire-ipam)
// and, optionally, a network config where they look for configs. Files are replaced atomically (temp +
// rename) so a runtime never executes or reads a half-written file.
import { mkdirSync, readFileSync } from 'node:fs';
import { atomicCopy, atomicWrite } from '../files.js';
import { basename, join } from 'node:path';
import type { CommandModule } from 'yargs';

interface InstallArgs {
  'bin-dir': string;
  'conf-dir': string;
  conflist?: string;
}

export const installCommand: CommandModule<object, InstallArgs> = {
  command: 'install',
  describe: 'install this binary as the podwire and podwire-ipam CNI plugins (and a conflist)',
  builder: (y) =>
    y
      .option('bin-dir', { type: 'string', default: '/opt/cni/bin', describe: 'CNI plugin directory' })
      .option('conf-dir', { type: 'string', default: '/etc/cni/net.d', describe: 'CNI config directory' })
      .option('conflist', { type: 'string', describe: 'a network config list to install into --conf-dir' }),
  handler: (a) => {
    const self = process.execPath;
    if (/^(node|bun)$/.test(basename(self))) {
      throw new Error('install copies the single-file binary: run it as dist/podwire, not through node');
    }
    mkdirSync(a['bin-dir'], { recursive: true });
    for (const name of ['podwire', 'podwire-ipam']) {
      atomicCopy(self, join(a['bin-dir'], name), 0o755);
      process.stdout.write(`installed ${join(a['bin-dir'], name)}\n`);
    }
    if (a.conflist) {
      const text = readFileSync(a.conflist, 'utf8');
      JSON.parse(text); // refuse to install a config runtimes would fail to read
      mkdirSync(a['conf-dir'], { recursive: true });
      atomicWrite(join(a['conf-dir'], basename(a.conflist)), text);
      process.stdout.write(`installed ${join(a['conf-dir'], basename(a.conflist))}\n`);
    }
  },
};
