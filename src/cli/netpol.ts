// `podwire netpol sync`: NetworkPolicies, Pods and Namespaces from a file (the Kubernetes objects, as
// `kubectl get -o json` prints them, in one List or as {"policies", "pods", "namespaces"}), compiled for
// this node and written to its nftables table (src/policy/) — what the agent does from the API
// server, once. The lab's policy proofs use it; a learner can too.
import { t } from '../i18n/index.js';
import { readFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { DEFAULT_SUBNET_FILE } from '../nodestate/subnet-file.js';
import { PolicyEnforcer, type PolicyObjects, writePolicyReport } from '../policy/enforce.js';

interface NetpolArgs {
  node: string;
  state: string;
  json: boolean;
  'subnet-file': string;
}

/** A kubectl List (items of any kind) or the three lists by name. */
export function policyObjects(doc: unknown): PolicyObjects {
  const o = doc as { items?: { kind?: string }[]; policies?: unknown[]; pods?: unknown[]; namespaces?: unknown[] };
  if (Array.isArray(o?.items)) {
    const of = (k: string) => o.items!.filter((i) => i?.kind === k);
    return { policies: of('NetworkPolicy'), pods: of('Pod'), namespaces: of('Namespace') };
  }
  return { policies: o?.policies ?? [], pods: o?.pods ?? [], namespaces: o?.namespaces ?? [] };
}

export const netpolCommand: CommandModule<object, NetpolArgs> = {
  command: 'netpol sync',
  get describe() {
    return t('cli.netpol');
  },
  builder: (y) =>
    y
      .option('node', { type: 'string', demandOption: true, describe: "this node's name: the pods it isolates are the ones on it" })
      .option('state', { type: 'string', demandOption: true, describe: 'JSON: a List of NetworkPolicy, Pod and Namespace objects' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .option('subnet-file', {
        type: 'string',
        default: DEFAULT_SUBNET_FILE,
        describe: 'the node subnet file: the report status and doctor read goes beside it',
      }),
  handler: async (a) => {
    const objects = policyObjects(JSON.parse(readFileSync(a.state, 'utf8')));
    const r = await new PolicyEnforcer(a.node).sync(objects);
    writePolicyReport(a['subnet-file'], r);
    for (const l of r.leftOut) process.stderr.write(`podwire: left out ${l.kind} ${l.name}: ${l.why}\n`);
    const summary = {
      applied: r.applied,
      lines: r.lines,
      ms: Math.round(r.ms * 10) / 10,
      rules: r.compiled?.rules ?? 0,
      policies: r.compiled?.policies ?? [],
      leftOut: r.leftOut,
    };
    if (a.json) process.stdout.write(JSON.stringify(summary) + '\n');
    else {
      process.stdout.write(`network policy: ${r.applied} (${summary.rules} rules, ${summary.ms} ms)\n`);
      for (const p of summary.policies)
        process.stdout.write(`  ${p.key}: ${p.types.join('+')}, selects ${p.selects} pod(s) here, ${p.rules} rule(s)\n`);
    }
  },
};
