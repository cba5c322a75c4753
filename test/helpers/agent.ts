// `podwire agent` started inside a lab node's namespace against a kubeconfig, as the agent tests run it:
// its stderr collected, its exit awaitable. The caller keeps the handle to stop it.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { LabNode } from '../../src/lab/lab.js';
import { BIN } from './netns.js';

export interface AgentHandle {
  proc: ChildProcess;
  stderr: () => string;
  exit: Promise<number>;
}

export function spawnAgent(n: LabNode, kubeconfig: string, extra: string[] = []): AgentHandle {
  const proc = spawn(
    'ip',
    [
      'netns',
      'exec',
      n.ns,
      BIN,
      'agent',
      '--kubeconfig',
      kubeconfig,
      '--node',
      n.name,
      '--subnet-file',
      n.subnetFile,
      '--cni-conf-dir',
      join(n.dir, 'net.d'),
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  return { proc, stderr: () => err, exit: new Promise((r) => proc.on('exit', (code) => r(code ?? -1))) };
}
