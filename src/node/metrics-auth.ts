// Who may read the agent's /metrics (--metrics-auth): the API server decides, as it does for the control
// plane's own components and kube-rbac-proxy. A TokenReview says whose bearer token it is; a
// SubjectAccessReview says whether that user may `get` the non-resource URL /metrics — which is what
// Prometheus's usual ClusterRole grants. So the node's metrics are not an open page for every pod and
// every host of the LAN, and no new secret is needed. /healthz and /readyz stay open (kubelet's probes
// carry no token); they say little (agent-status.ts).
//
// Answers are kept a minute per token (a scrape every 15 s would otherwise cost two API calls each), by
// the token's hash only, and at most for 256 tokens.
import { createHash } from 'node:crypto';
import type { ApiClient } from './api.js';

/** 200: may read; 401: no token or not one the API server knows; 403: known, not allowed; 503: cannot ask. */
export type MetricsAccess = 200 | 401 | 403 | 503;
export type Authorize = (authorization: string | undefined) => Promise<MetricsAccess>;

interface TokenReview {
  status?: { authenticated?: boolean; user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> } };
}
interface SubjectAccessReview {
  status?: { allowed?: boolean };
}

const KEEP_MS = 60_000;
const KEEP_MAX = 256;

export function apiAuthorizer(api: Pick<ApiClient, 'post'>, now = () => Date.now()): Authorize {
  const kept = new Map<string, { access: MetricsAccess; until: number }>();
  return async (authorization) => {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) return 401;
    const key = createHash('sha256').update(token).digest('hex');
    const k = kept.get(key);
    if (k && k.until > now()) return k.access;
    let access: MetricsAccess;
    try {
      const review = await api.post<TokenReview>(
        { path: '/apis/authentication.k8s.io/v1/tokenreviews', timeoutMs: 5000 },
        { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
      );
      const user = review.status?.authenticated ? review.status.user : undefined;
      if (!user?.username) access = 401;
      else {
        const sar = await api.post<SubjectAccessReview>(
          { path: '/apis/authorization.k8s.io/v1/subjectaccessreviews', timeoutMs: 5000 },
          {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: user.username,
              uid: user.uid,
              groups: user.groups,
              extra: user.extra,
              nonResourceAttributes: { path: '/metrics', verb: 'get' },
            },
          },
        );
        access = sar.status?.allowed === true ? 200 : 403;
      }
    } catch {
      return 503; // not kept: the next scrape asks again
    }
    if (kept.size >= KEEP_MAX) kept.clear();
    kept.set(key, { access, until: now() + KEEP_MS });
    return access;
  };
}
