// Whether the agent follows the API server, kept where `status` and `doctor` read it (a file beside the
// subnet file, like the left-out nodes and the policy report): an operator on the node sees a blind agent
// without reaching the agent's port. Written when a resource goes up or down, never per event.
import { writeIfChanged } from '../runtime/files.js';
import { besideSubnetFile, readJson } from './reports.js';

export interface ApiReport {
  /** The API server's address, as the kubeconfig names it. */
  server: string;
  /** Per resource (nodes, pods, namespaces, networkpolicies): up or not, since when (ISO), and why not. */
  resources: Record<string, { up: boolean; since: string; cause?: string }>;
}

export const apiReportFile = (subnetFile: string): string => besideSubnetFile(subnetFile, 'api.json');

/** Keeps one report per agent and writes it whenever a resource's state changes. */
export class ApiReporter {
  private readonly report: ApiReport;

  constructor(
    private readonly subnetFile: string | undefined,
    server: string,
  ) {
    this.report = { server, resources: {} };
  }

  set(resource: string, f: { up: boolean; since: number; cause?: string }): void {
    this.report.resources[resource] = {
      up: f.up,
      since: new Date(f.since).toISOString(),
      ...(f.up || !f.cause ? {} : { cause: f.cause }),
    };
    if (this.subnetFile) writeIfChanged(apiReportFile(this.subnetFile), JSON.stringify(this.report, null, 1) + '\n');
  }
}

/** The last report, or undefined when no agent wrote one here. */
export const readApiReport = (subnetFile: string | undefined): ApiReport | undefined =>
  subnetFile ? readJson<ApiReport>(apiReportFile(subnetFile)) : undefined;

/** The resources the agent does not follow now, oldest first: [resource, since, cause]. */
export function blindResources(r: ApiReport | undefined): { resource: string; since: string; cause: string }[] {
  return Object.entries(r?.resources ?? {})
    .filter(([, s]) => !s.up)
    .map(([resource, s]) => ({ resource, since: s.since, cause: s.cause ?? '' }))
    .sort((a, b) => a.since.localeCompare(b.since));
}
