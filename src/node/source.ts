// Where the node list comes from. `peers sync` only needs "the cluster now" and "tell me when it may have
// changed"; a file is the first source, the Kubernetes API (Nodes' podCIDR and InternalIP) the next.
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { type Cluster, ClusterError, parseCluster } from './cluster.js';

export interface NodeSource {
  /** What it describes, for messages. */
  readonly name: string;
  load(): Promise<Cluster>;
  /** Calls onChange when the list may have changed; returns a function that stops watching. */
  watch(onChange: () => void): () => void;
}

export function readClusterFile(path: string): Cluster {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ClusterError(`cannot read cluster file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ClusterError(`cluster file ${path} is not JSON: ${(e as Error).message}`);
  }
  return parseCluster(json);
}

export class FileSource implements NodeSource {
  constructor(readonly path: string) {}

  get name(): string {
    return this.path;
  }

  async load(): Promise<Cluster> {
    return readClusterFile(this.path);
  }

  /**
   * Watches the file's directory, not the file: editors and config tools replace a file by rename, which
   * a watch on the old inode would never report. Bursts of events are folded into one call.
   */
  watch(onChange: () => void): () => void {
    const file = basename(this.path);
    let timer: NodeJS.Timeout | undefined;
    const watcher: FSWatcher = watch(dirname(this.path), (_event, name) => {
      if (name !== null && name !== file) return;
      clearTimeout(timer);
      timer = setTimeout(onChange, 100);
    });
    return () => {
      clearTimeout(timer);
      watcher.close();
    };
  }
}
