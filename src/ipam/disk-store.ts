// The Store on disk, in host-local's layout so existing tools can read it:
//   <dataDir>/<network>/<ip>               "<containerID>\r\n<ifname>"
//   <dataDir>/<network>/last_reserved_ip.0 the last address handed out
//   <dataDir>/<network>/lock               flock(2)ed around every allocation (see lock.ts)
// A reservation appears atomically: its content is written to a temp file which is then hard-linked to the
// IP's name (link(2) fails if the name exists), so a crash leaves either no reservation or a complete one
// that DEL or GC can release - never an empty file nobody owns.
import { linkSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Attachment } from '../cni/types.js';
import { log } from '../log.js';
import { lockFile } from './lock.js';
import { parseIP } from './ip.js';
import type { Store } from './store.js';

const LAST = 'last_reserved_ip.0';
const TMP = '.tmp-';

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

export class DiskStore implements Store {
  constructor(readonly dir: string) {}

  static forNetwork(dataDir: string, network: string): DiskStore {
    return new DiskStore(join(dataDir, network));
  }

  async lock(): Promise<() => void> {
    const started = performance.now();
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const unlock = await lockFile(join(this.dir, 'lock'));
    log.debug({ dir: this.dir, ms: +(performance.now() - started).toFixed(2) }, 'ipam lock acquired');
    return unlock;
  }

  /**
   * Every reservation. `tidy` removes crashed writers' temp files, which is safe only under the lock;
   * readers that do not hold it (podwire status) pass false, or they could break an ADD in flight.
   */
  list(tidy = true): Map<string, Attachment> {
    const out = new Map<string, Attachment>();
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw e;
    }
    for (const name of names) {
      // Under the lock, a temp file here is a crashed writer's leftover.
      if (tidy && name.startsWith(TMP)) unlinkQuiet(join(this.dir, name));
      if (!parseIP(name)) continue;
      let text: string;
      try {
        text = readFileSync(join(this.dir, name), 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const [id = '', ifname = ''] = text.split(/\r?\n/);
      out.set(name, { containerID: id.trim(), ifname: ifname.trim() });
    }
    return out;
  }

  reserve(ip: string, owner: Attachment): boolean {
    const tmp = join(this.dir, `${TMP}${ip}-${process.pid}`);
    writeFileSync(tmp, `${owner.containerID}\r\n${owner.ifname}`);
    try {
      linkSync(tmp, join(this.dir, ip));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    } finally {
      unlinkQuiet(tmp);
    }
    writeFileSync(join(this.dir, LAST), ip);
    return true;
  }

  release(ip: string): void {
    unlinkQuiet(join(this.dir, ip));
  }

  lastReserved(): string | undefined {
    try {
      return readFileSync(join(this.dir, LAST), 'utf8').trim() || undefined;
    } catch {
      return undefined;
    }
  }
}
