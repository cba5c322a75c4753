// The Store on disk, in host-local's layout so existing tools can read it:
//   <dataDir>/<network>/<ip>               "<containerID>\r\n<ifname>"
//   <dataDir>/<network>/last_reserved_ip.0 the last address handed out
//   <dataDir>/<network>/lock               flock(2)ed by GC (see lock.ts); host-local locks it too
// A reservation appears atomically: its content is written to a temp file which is then hard-linked to the
// IP's name (link(2) fails if the name exists), so a crash leaves either no reservation or a complete one
// that DEL or GC can release - never an empty file nobody owns. Exclusive by itself, it needs no lock.
import { linkSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Attachment } from '../cni/types.js';
import { log } from '../log.js';
import { lockFile } from './lock.js';
import { parseIP } from '../net/ip.js';
import type { Store } from './store.js';

const LAST = 'last_reserved_ip.0';
const TMP = '.tmp-';
/** A writer holds its temp file for microseconds: one this old belongs to a process that died. */
const STALE_TMP_MS = 60_000;

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
   * Every reservation. `tidy` also removes the temp files of writers that died (older than a minute);
   * read-only callers (podwire status) pass false and change nothing.
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
      if (tidy && name.startsWith(TMP)) this.tidy(join(this.dir, name));
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

  private tidy(tmp: string): void {
    try {
      if (Date.now() - statSync(tmp).mtimeMs > STALE_TMP_MS) unlinkQuiet(tmp);
    } catch {
      // gone already
    }
  }

  reserve(ip: string, owner: Attachment): boolean {
    const tmp = join(this.dir, `${TMP}${ip}-${process.pid}`);
    const content = `${owner.containerID}\r\n${owner.ifname}`;
    try {
      writeFileSync(tmp, content);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(this.dir, { recursive: true, mode: 0o755 }); // the network's first reservation
      writeFileSync(tmp, content);
    }
    try {
      linkSync(tmp, join(this.dir, ip));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    } finally {
      unlinkQuiet(tmp);
    }
    // Renamed into place: a reader racing a parallel ADD sees the old address or the new one, never an
    // empty file (which would restart round-robin at the range's start).
    const lastTmp = `${tmp}-last`;
    writeFileSync(lastTmp, ip);
    renameSync(lastTmp, join(this.dir, LAST));
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
