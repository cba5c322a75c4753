// Spec versions podwire speaks, and the conversion of a 1.1.0-shaped result to the version a caller asked for.
import { familyOf } from '../net/ip.js';
import { CniError, Code } from './errors.js';
import type { IPConfig, Result } from './types.js';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const LATEST = '1.1.0';

function parts(v: string): number[] {
  return v.split('.').map((n) => Number(n));
}

/** Compares dotted versions numerically: <0, 0, >0. */
export function compareVersions(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupported(v: unknown): v is string {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** CHECK exists from 0.4.0, GC and STATUS from 1.1.0. */
const MIN_FOR_COMMAND: Record<string, string> = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' };

export function requireVersionFor(command: string, version: string): void {
  const min = MIN_FOR_COMMAND[command];
  if (min && compareVersions(version, min) < 0) {
    throw new CniError(
      Code.IncompatibleVersion,
      `incompatible CNI version: ${command} needs cniVersion ${min} or later, config has ${version}`,
    );
  }
}

const INTERFACE_11_ONLY = ['mtu', 'socketPath', 'pciID'] as const;
const ROUTE_11_ONLY = ['mtu', 'advmss', 'priority', 'table', 'scope'] as const;

function without<T extends object>(obj: T, keys: readonly string[]): T {
  const out = { ...obj } as Record<string, unknown>;
  for (const k of keys) delete out[k];
  return out as T;
}

/** Renders a result for `version`: 0.3.x/0.4.0 add ips[].version; anything older than 1.1.0 loses 1.1 fields. */
export function convertResult(result: Result, version: string): Record<string, unknown> {
  const old = compareVersions(version, '1.1.0') < 0;
  const pre1 = compareVersions(version, '1.0.0') < 0;
  const out: Record<string, unknown> = { cniVersion: version };
  if (result.interfaces) out.interfaces = old ? result.interfaces.map((i) => without(i, INTERFACE_11_ONLY)) : result.interfaces;
  out.ips = (result.ips ?? []).map((ip) => (pre1 ? { version: String(familyOf(ip.address)), ...ip } : ip));
  if (result.routes) out.routes = old ? result.routes.map((r) => without(r, ROUTE_11_ONLY)) : result.routes;
  if (result.dns && Object.keys(result.dns).length > 0) out.dns = result.dns;
  return out;
}

/**
 * Reads a result of any supported version (a prevResult, or a delegated IPAM plugin's output) into the
 * 1.1.0 shape. Returns undefined when there is nothing usable.
 */
export function parseResult(raw: unknown): Result | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  const ips = Array.isArray(r.ips)
    ? r.ips
        .filter((ip): ip is Record<string, unknown> => !!ip && typeof ip === 'object' && typeof ip.address === 'string')
        .map((ip) => without(ip, ['version']) as unknown as IPConfig)
    : [];
  return {
    cniVersion: typeof r.cniVersion === 'string' ? r.cniVersion : LATEST,
    interfaces: Array.isArray(r.interfaces) ? (r.interfaces as Result['interfaces']) : undefined,
    ips,
    routes: Array.isArray(r.routes) ? (r.routes as Result['routes']) : undefined,
    dns: r.dns && typeof r.dns === 'object' ? (r.dns as Result['dns']) : undefined,
  };
}

/**
 * VERSION's answer, as the reference plugins give it: the latest version podwire speaks and all it
 * supports, whatever the caller's config says (the reply's format is the same in every version). No
 * config is needed, so none is read: podman asks before every ADD and DEL, and this way the answer costs
 * what starting a binary that does nothing costs.
 */
export const versionReply = (): string => JSON.stringify({ cniVersion: LATEST, supportedVersions: SUPPORTED_VERSIONS });
