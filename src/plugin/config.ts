// The podwire plugin's own config keys (beside name/type/cniVersion/ipam/dns, checked by the skeleton).
import { invalidConfig, invalidEnv } from '../cni/errors.js';
import type { Context, NetConf } from '../cni/types.js';
import { validIfname, validMac } from '../cni/validate.js';

export const PLUGIN_TYPE = 'podwire';
export const DEFAULT_BRIDGE = 'cni0';
export const DEFAULT_MTU = 1500;

export interface BridgeConf {
  bridge: string;
  /** undefined: take it from the node subnet file, else DEFAULT_MTU. */
  mtu?: number;
  hairpinMode: boolean;
  isDefaultGateway: boolean;
  ipMasq: boolean;
}

function bool(conf: NetConf, key: string, dflt: boolean): boolean {
  const v = conf[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw invalidConfig(key, 'must be true or false');
  return v;
}

export function parseBridgeConf(conf: NetConf): BridgeConf {
  const bridge = conf.bridge ?? DEFAULT_BRIDGE;
  if (!validIfname(bridge)) throw invalidConfig('bridge', `"${String(bridge)}" is not a valid interface name`);
  const mtu = conf.mtu;
  if (mtu !== undefined && !(Number.isInteger(mtu) && (mtu as number) >= 576 && (mtu as number) <= 65535)) {
    throw invalidConfig('mtu', 'must be an integer from 576 to 65535');
  }
  if (conf.dns !== undefined && (typeof conf.dns !== 'object' || conf.dns === null)) throw invalidConfig('dns', 'must be an object');
  if (conf.ipam === undefined || typeof conf.ipam !== 'object') throw invalidConfig('ipam', 'missing');
  return {
    bridge,
    mtu: mtu as number | undefined,
    hairpinMode: bool(conf, 'hairpinMode', true),
    isDefaultGateway: bool(conf, 'isDefaultGateway', true),
    ipMasq: bool(conf, 'ipMasq', false),
  };
}

/** The pod's MAC a runtime asked for: CNI_ARGS MAC= (podman --mac-address), runtimeConfig.mac or args.cni.mac. */
export function requestedMac(ctx: Context): string | undefined {
  const fromArgs = ctx.env.args.MAC;
  if (fromArgs !== undefined) {
    if (!validMac(fromArgs)) throw invalidEnv('CNI_ARGS', `MAC=${fromArgs} is not a unicast MAC address`);
    return fromArgs.toLowerCase();
  }
  for (const [key, v] of [
    ['runtimeConfig.mac', ctx.conf.runtimeConfig?.mac],
    ['args.cni.mac', (ctx.conf.args?.cni as Record<string, unknown> | undefined)?.mac],
  ] as const) {
    if (v === undefined) continue;
    if (!validMac(v)) throw invalidConfig(key, `"${String(v)}" is not a unicast MAC address`);
    return v.toLowerCase();
  }
  return undefined;
}
