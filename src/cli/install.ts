// `podwire install`: puts this binary where runtimes look for CNI plugins and, optionally, a network
// config where they look for configs — a file as it is (--conflist), or the agent's template with its
// subnet file filled in (--agent-conflist: the DaemonSet's init container, so that the long-running agent
// needs no write access to /etc/cni/net.d).
//
// The binary is written once, as `podwire`; `podwire-ipam` is a relative symlink to it (the binary picks
// its role from the name it was executed as), so a node holds one copy instead of two, and the link
// stays right when the directory is mounted elsewhere (/host/opt/cni/bin in the DaemonSet's init
// container is /opt/cni/bin on the host). Every file is replaced by a rename, so an ADD that starts
// during an upgrade runs the old binary or the new one, never a half-written one or none.
import { t } from '../i18n/index.js';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { CommandModule } from 'yargs';
import { atomicCopy, atomicSymlink, atomicWrite, mkdirs } from '../runtime/files.js';
import { CONFLIST_NAME, agentConflist } from '../node/kube-agent.js';
import { DEFAULT_SUBNET_FILE } from '../nodestate/subnet-file.js';

interface InstallArgs {
  'bin-dir': string;
  'conf-dir': string;
  conflist?: string;
  'agent-conflist'?: string;
  'subnet-file': string;
}

const BINARY = 'podwire';
const LINKS = ['podwire-ipam'];

/** The config's text, refused when runtimes would fail to read it. */
function readConflist(file: string): string {
  const text = readFileSync(file, 'utf8');
  try {
    JSON.parse(text);
  } catch (e) {
    throw new Error(`--conflist ${file} is not JSON: ${(e as Error).message}`);
  }
  return text;
}

export const installCommand: CommandModule<object, InstallArgs> = {
  command: 'install',
  get describe() {
    return t('cli.install');
  },
  builder: (y) =>
    y
      .option('bin-dir', { type: 'string', default: '/opt/cni/bin', describe: 'CNI plugin directory' })
      .option('conf-dir', { type: 'string', default: '/etc/cni/net.d', describe: 'CNI config directory' })
      .option('conflist', { type: 'string', describe: 'a network config list to install into --conf-dir' })
      .option('agent-conflist', {
        type: 'string',
        describe:
          "the agent's template (the DaemonSet's ConfigMap): installed into --conf-dir as 10-podwire.conflist, its podwire plugin reading --subnet-file",
      })
      .option('subnet-file', { type: 'string', default: DEFAULT_SUBNET_FILE, describe: 'the node subnet file the agent writes' })
      .conflicts('conflist', 'agent-conflist'),
  handler: (a) => {
    const self = process.execPath;
    if (/^(node|bun)$/.test(basename(self))) {
      throw new Error('install copies the single-file binary: run it as dist/podwire, not through node');
    }
    // Read and check the config first: a bad --conflist (or template) changes nothing.
    const conflist = a.conflist
      ? readConflist(a.conflist)
      : a['agent-conflist']
        ? agentConflist(a['subnet-file'], readFileSync(a['agent-conflist'], 'utf8'))
        : undefined;
    const confName = a.conflist ? basename(a.conflist) : CONFLIST_NAME;
    mkdirs(a['bin-dir']);
    atomicCopy(self, join(a['bin-dir'], BINARY), 0o755);
    process.stdout.write(`installed ${join(a['bin-dir'], BINARY)}\n`);
    for (const name of LINKS) {
      atomicSymlink(BINARY, join(a['bin-dir'], name));
      process.stdout.write(`linked ${join(a['bin-dir'], name)} -> ${BINARY}\n`);
    }
    if (conflist !== undefined) {
      mkdirs(a['conf-dir']);
      atomicWrite(join(a['conf-dir'], confName), conflist);
      process.stdout.write(`installed ${join(a['conf-dir'], confName)}\n`);
    }
  },
};
