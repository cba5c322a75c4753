// What the agent (and `podwire netpol sync`) leaves beside the subnet file for `status` and `doctor` on the
// node: the Nodes it leaves out and the NetworkPolicies it enforces (api-report.ts: whether it follows the
// API server). Each file one type, one writer and one reader, all found from the subnet file's path.
import { sys, writeIfChanged } from '../runtime/files.js';

/** A file of the node's state directory: beside the subnet file. */
export const besideSubnetFile = (subnetFile: string, name: string): string =>
  `${subnetFile.slice(0, Math.max(1, subnetFile.lastIndexOf('/')))}/${name}`;

/** Reads one of those files, or undefined when there is none or it is not JSON. */
export function readJson<T>(path: string): T | undefined {
  try {
    const text = sys().readText(path);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  } catch {
    return undefined;
  }
}

export type LeftOutReason = 'name' | 'node-ip' | 'pod-cidr' | 'vtep-mac' | 'conflict';
export const LEFT_OUT_REASONS: readonly LeftOutReason[] = ['name', 'node-ip', 'pod-cidr', 'vtep-mac', 'conflict'];

/** A node that was not used, the field at fault and why ("10.99.0.0/24 is outside the cluster network 10.244.0.0/16"). */
export interface LeftOut {
  name: string;
  field: string;
  why: string;
  reason: LeftOutReason;
}

export const leftOutFile = (subnetFile: string): string => besideSubnetFile(subnetFile, 'nodes-left-out.json');

/** The Nodes the agent leaves out now; the file goes once none is (and stays absent when there never was one). */
export function writeLeftOut(subnetFile: string, now: readonly LeftOut[]): void {
  const file = leftOutFile(subnetFile);
  if (now.length || sys().exists(file)) writeIfChanged(file, JSON.stringify(now, null, 1) + '\n');
}

export function readLeftOut(subnetFile: string | undefined): LeftOut[] {
  const list = subnetFile ? readJson<LeftOut[]>(leftOutFile(subnetFile)) : undefined;
  return Array.isArray(list) ? list : [];
}

/** One NetworkPolicy as a node enforces it: its table id, the pods it selects here and in the cluster, named ports no pod has. */
export interface PolicySummary {
  key: string;
  id: string;
  selects: number;
  selectsInCluster: number;
  rules: number;
  types: string[];
  missingPorts: string[];
}

/** What a NetworkPolicy sync enforced on this node. */
export interface PolicyReport {
  applied: 'full' | 'elements' | 'removed' | 'none';
  rules: number;
  policies: PolicySummary[];
  leftOut: { kind: string; name: string; why: string; isolating?: boolean }[];
}

export const policyReportFile = (subnetFile: string): string => besideSubnetFile(subnetFile, 'network-policy.json');

export const writePolicyReport = (subnetFile: string, r: PolicyReport): boolean =>
  writeIfChanged(policyReportFile(subnetFile), JSON.stringify(r, null, 1) + '\n');

/**
 * The gate is up (policy/gate.ts): the agent enforces policies here and releases each new pod once it has
 * placed it; the plugin then holds every new pod it wires. A file with nothing in it; one stat per ADD.
 */
export const gateFile = (subnetFile: string): string => besideSubnetFile(subnetFile, 'policy-gate');
export const gateUp = (subnetFile: string | undefined): boolean => !!subnetFile && sys().exists(gateFile(subnetFile));
export function setGate(subnetFile: string, up: boolean): void {
  if (up) writeIfChanged(gateFile(subnetFile), 'the agent holds new pods until it has placed them (table inet podwire-gate)\n');
  else sys().unlink(gateFile(subnetFile));
}

export const readPolicyReport = (subnetFile: string | undefined): PolicyReport | undefined =>
  subnetFile ? readJson<PolicyReport>(policyReportFile(subnetFile)) : undefined;
