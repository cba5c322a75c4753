// The CNI data shapes podwire reads and writes, in their 1.1.0 form; version.ts converts for older callers.
import type { Trace } from './trace.js';

export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface IPConfig {
  /** CIDR notation: "10.244.1.5/24". */
  address: string;
  gateway?: string;
  interface?: number;
}

export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface DNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: Route[];
  dns?: DNS;
}

export interface Attachment {
  containerID: string;
  ifname: string;
}

/** What every plugin config has; plugin-specific keys are validated by each plugin. */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  ipam?: Record<string, unknown> & { type?: string };
  dns?: DNS;
  prevResult?: Result;
  runtimeConfig?: Record<string, unknown>;
  args?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The CNI_* environment after validation. Fields a verb does not need are empty strings. */
export interface CniEnv {
  command: string;
  containerID: string;
  netns: string;
  ifname: string;
  args: Record<string, string>;
  path: string[];
}

export interface Context {
  env: CniEnv;
  conf: NetConf;
  /** stdin as received, passed unchanged to delegated plugins. */
  stdin: string;
  /** Set when the caller asked for a trace (PODWIRE_TRACE or "trace" in the config); see trace.ts. */
  trace?: Trace;
}

/** One plugin's verb logic; the skeleton (skel.ts) does everything else. */
export interface Plugin {
  add(ctx: Context): Promise<Result>;
  del(ctx: Context): Promise<void>;
  check(ctx: Context): Promise<void>;
  gc(ctx: Context): Promise<void>;
  status(ctx: Context): Promise<void>;
}
