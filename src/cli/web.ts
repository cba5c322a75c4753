// `podwire web`: the lab (or this node) as a live page on a local address; see src/web/server.ts.
import type { CommandModule } from 'yargs';
import { t } from '../i18n/index.js';
import { thisNode } from '../explore/world.js';
import { labNamespaces, labScope } from '../lab/netns.js';
import { serveWeb } from '../web/server.js';

interface WebArgs {
  addr: string;
  lab?: boolean;
}

/** "HOST:PORT", "[::1]:PORT" or "PORT" (127.0.0.1). */
export function webAddr(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(s) ?? (/^\d+$/.test(s) ? [s, undefined, '127.0.0.1', s] : null);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port > 65535) throw new Error(`--addr ${s}: expected HOST:PORT, e.g. 127.0.0.1:9480`);
  return { host: m[1] ?? m[2]!, port };
}

export const webCommand: CommandModule<object, WebArgs> = {
  command: 'web',
  get describe() {
    return t('cli.web');
  },
  builder: (y) =>
    y
      .option('addr', { type: 'string', default: '127.0.0.1:9480', describe: t('opt.webAddr') })
      .option('lab', { type: 'boolean', describe: t('opt.labPath') })
      .example('$0 web', '')
      .example('$0 web --addr 127.0.0.1:8080', ''),
  handler: async (a) => {
    const { host, port } = webAddr(a.addr);
    const lab = a.lab ?? labNamespaces().length > 0;
    // The scope is read again on every request: nodes and pods come and go.
    const { port: bound } = await serveWeb(host, port, {
      scope: () => (lab ? labScope() : thisNode()),
      title: lab ? 'podwire lab' : 'this node',
    });
    process.stderr.write(t('web.serving', { url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/` }) + '\n');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    process.exit(0);
  },
};
