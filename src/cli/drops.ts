// `podwire drops`: a live tail of every packet podwire drops on a node — the pod it names, the check or
// policy that dropped it, the packet — in the learner's language, like `hubble observe --verdict
// DROPPED`. It reads the node's agent (/drops on its status address) when one answers, with pod names
// and policies; else the netlink log group itself (ulogd2), naming pods by their port and addresses.
import { spawnSync } from 'node:child_process';
import { get } from 'node:http';
import type { CommandModule } from 'yargs';
import { lang, t } from '../i18n/index.js';
import { type Drop, DROP_REASONS, dropText } from '../drops/drop.js';
import { GUARD_LOG_GROUP } from '../guard/table.js';
import { watchDrops } from '../node/drops.js';
import { labNodeFiles } from '../lab/lab.js';
import { podwireBinary } from '../runtime/run.js';
import { lineSplitter } from '../runtime/lines.js';

interface DropsArgs {
  lab?: string;
  'status-addr': string;
  json: boolean;
  seconds?: number;
  recent: number;
}

/** A line from the agent, kept only if it is a drop (the agent is local, but what is printed is checked). */
function asDrop(line: string): Drop | undefined {
  try {
    const d = JSON.parse(line) as Drop;
    return d && typeof d.time === 'string' && (DROP_REASONS as readonly string[]).includes(d.reason) && typeof d.proto === 'string'
      ? d
      : undefined;
  } catch {
    return undefined;
  }
}

/** Follows the agent's /drops until `until` settles; false when no agent answers. */
function fromAgent(addr: string, recent: number, print: (d: Drop) => void, until: Promise<void>): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(`http://${addr}/drops?recent=${recent}`, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return resolve(false);
      }
      process.stderr.write(t('drops.reading', { where: t('drops.fromAgent') }) + '\n');
      res.setEncoding('utf8');
      res.on(
        'data',
        lineSplitter((line) => {
          const d = asDrop(line);
          if (d) print(d);
        }),
      );
      res.on('end', () => resolve(true));
      void until.then(() => {
        req.destroy();
        resolve(true);
      });
    });
    req.on('error', () => resolve(false));
  });
}

export const dropsCommand: CommandModule<object, DropsArgs> = {
  command: 'drops',
  get describe() {
    return t('cli.drops');
  },
  builder: (y) =>
    y
      .option('lab', { type: 'string', describe: t('opt.dropsLab') })
      .option('status-addr', { type: 'string', default: '127.0.0.1:9471', describe: t('opt.dropsStatusAddr') })
      .option('json', { type: 'boolean', default: false, describe: t('opt.json') })
      .option('seconds', { type: 'number', describe: t('opt.dropsSeconds') })
      .option('recent', { type: 'number', default: 0, describe: t('opt.dropsRecent') })
      .example('$0 drops', '')
      .example('$0 drops --lab node1 --json', ''),
  handler: async (a) => {
    if (a.lab) {
      const f = labNodeFiles(a.lab);
      const args = ['drops', '--lang', lang(), ...(a.json ? ['--json'] : []), ...(a.seconds ? ['--seconds', String(a.seconds)] : [])];
      process.exitCode = spawnSync('ip', ['netns', 'exec', f.ns, podwireBinary(), ...args], { stdio: 'inherit' }).status ?? 1;
      return;
    }
    const print = (d: Drop) => process.stdout.write((a.json ? JSON.stringify(d) : dropText(d)) + '\n');
    const until = new Promise<void>((resolve) => {
      if (a.seconds) setTimeout(resolve, a.seconds * 1000);
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    if (await fromAgent(a['status-addr'], a.recent, print, until)) return;
    process.stderr.write(t('drops.reading', { where: t('drops.fromGroup', { group: GUARD_LOG_GROUP, addr: a['status-addr'] }) }) + '\n');
    let failed: string | undefined;
    const reader = watchDrops({ say: (m) => (failed = m), onDrop: print });
    if (!reader) throw new Error(t('drops.cannot', { why: failed ?? '?' }));
    const why = await Promise.race([until.then(() => undefined), reader.ended]);
    reader.stop();
    if (why) throw new Error(t('drops.cannot', { why }));
  },
};
