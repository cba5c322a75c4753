// `podwire web`: the lab (or this node) as a live page on a local address; see src/web/server.ts. With
// --send (a lab only), the page's "send it" really sends the packet, the lab's way.
import type { CommandModule } from 'yargs';
import { t } from '../i18n/index.js';
import { thisNode } from '../explore/world.js';
import { LAB_PREFIX, httpGet, labNamespaces, labScope, pingAsync } from '../lab/netns.js';

/** The lab's own way of sending, from one of its namespaces only: an HTTP GET to DST:PORT, or one ping. */
async function labSend(fromNs: string, dst: { ip: string; port?: number }, proto: string): Promise<string> {
  if (!fromNs.startsWith(LAB_PREFIX)) throw new Error(`${fromNs} is not a lab namespace`);
  if (proto === 'icmp') return (await pingAsync(fromNs, dst.ip)) ? 'ping: reply' : '';
  return httpGet(fromNs, dst.ip, dst.port!);
}
import { serveWeb } from '../web/server.js';
import { parseAddr } from './agent.js';

interface WebArgs {
  addr: string;
  lab?: boolean;
  send?: boolean;
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
      .option('send', { type: 'boolean', default: false, describe: t('opt.webSend') })
      .example('$0 web', '')
      .example('$0 web --addr 127.0.0.1:8080', ''),
  handler: async (a) => {
    // "HOST:PORT", "[::1]:PORT" or "PORT" (on 127.0.0.1), read as the agent reads its addresses.
    const addr = parseAddr(a.addr, '--addr', '127.0.0.1');
    if (!addr) throw new Error('--addr: podwire web needs an address to listen on');
    const { host, port } = addr;
    const lab = a.lab ?? labNamespaces().length > 0;
    // The scope is read again on every request: nodes and pods come and go.
    if (a.send && !lab) throw new Error('--send: only in a lab (npm run lab -- --keep): a real node is never sent test traffic');
    const { port: bound } = await serveWeb(host, port, {
      scope: () => (lab ? labScope() : thisNode()),
      title: lab ? 'podwire lab' : 'this node',
      ...(a.send ? { send: labSend } : {}),
    });
    process.stderr.write(t('web.serving', { url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/` }) + '\n');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    process.exit(0);
  },
};
