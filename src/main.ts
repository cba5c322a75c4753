// One binary, two roles: a CNI plugin when the runtime sets CNI_COMMAND, the podwire CLI otherwise.
// Installed (or linked) as "podwire-ipam" it is the standalone IPAM plugin.
//
// Each role is imported when it is chosen: the plugin runs once per pod and its start-up is most of its
// cost. VERSION (which podman asks before every ADD and DEL) is answered here, with nothing else loaded
// and nothing read: it costs what a binary that does nothing costs.
import { versionReply } from './cni/version.js';
import { recordStartup, timed } from './runtime/profile.js';
import { writeStderr, writeStdout } from './runtime/stdio.js';

function invokedAs(): string {
  // argv0 is the path the runtime executed (a link keeps its own name); execPath is the resolved binary.
  const names = [process.argv0, process.argv[1] ?? '', process.execPath].map((p) => p.slice(p.lastIndexOf('/') + 1));
  return names.find((n) => n.startsWith('podwire')) ?? 'podwire';
}

async function main(): Promise<number> {
  recordStartup();
  const command = process.env.CNI_COMMAND;
  if (command === 'VERSION') {
    await writeStdout(versionReply() + '\n');
    return 0;
  }
  if (command) {
    const { runPlugin } = await timed('load the plugin', () => import('./plugin/index.js'));
    return runPlugin(invokedAs());
  }
  const { cli } = await import('./cli/index.js');
  return cli(process.argv.slice(2));
}

// No top-level await: Bun's --bytecode compilation does not support it.
main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    writeStderr(`podwire: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
