// CHECK: the kernel still holds what ADD's result says — the pod's interface, its MAC, addresses and
// routes, the bridge, and the host veth on it — and the IPAM its address. Reads only.
import { CniError, Code, invalidConfig, invalidEnv } from '../cni/errors.js';
import type { Context } from '../cni/types.js';
import { ipamFor } from '../ipam/ipam.js';
import { familyOf } from '../net/ip.js';
import { attachmentNames } from '../kernel/names.js';
import { isUp, linkByName, readState } from '../kernel/state.js';
import { sys } from '../runtime/files.js';
import { parseBridgeConf } from './config.js';

function checkFailed(msg: string): CniError {
  return new CniError(Code.CheckFailed, `CHECK failed: ${msg}`);
}

const isDefault = (dst: string): boolean => dst === 'default' || dst === '0.0.0.0/0' || dst === '::/0';
const sameDst = (a: string, b: string): boolean => a === b || (isDefault(a) && isDefault(b));

export async function check(ctx: Context): Promise<void> {
  const { env, conf } = ctx;
  const bc = parseBridgeConf(conf);
  const prev = conf.prevResult;
  if (!prev) throw invalidConfig('prevResult', 'missing: CHECK needs the result of ADD');
  if (!sys().exists(env.netns)) throw invalidEnv('CNI_NETNS', `${env.netns} does not exist`);
  const host = attachmentNames(conf.name, env.containerID, env.ifname).hostVeth;
  const v6 = (prev.routes ?? []).some((r) => familyOf(r.dst) === 6);
  const [onHost, inPod] = await Promise.all([
    readState(undefined),
    readState(env.netns, { routes: 'table main', routes6: v6 }),
    ipamFor(ctx).check(ctx),
  ]);

  // The pod's side first: its interface is what the workload sees, and when it is gone the host end of
  // the pair went with it, so naming the pod's interface points at the cause.
  const eth = linkByName(inPod.links, env.ifname);
  if (!eth) throw checkFailed(`interface ${env.ifname} is missing in ${env.netns}`);
  if (!isUp(eth)) throw checkFailed(`interface ${env.ifname} is down`);
  const podIf = prev.interfaces?.find((i) => i.sandbox && i.name === env.ifname);
  if (podIf?.mac && eth.address?.toLowerCase() !== podIf.mac.toLowerCase()) {
    throw checkFailed(`interface ${env.ifname} has MAC ${eth.address}, prevResult says ${podIf.mac}`);
  }
  for (const ip of prev.ips ?? []) {
    const [addr, prefix] = ip.address.split('/');
    if (!eth.addr_info?.some((a) => a.local === addr && String(a.prefixlen) === prefix)) {
      throw checkFailed(`address ${ip.address} is missing on ${env.ifname}`);
    }
  }
  for (const r of prev.routes ?? []) {
    if (!inPod.routes.some((k) => sameDst(k.dst, r.dst) && (!r.gw || k.gateway === r.gw))) {
      throw checkFailed(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} is missing in ${env.netns}`);
    }
  }

  if (!linkByName(onHost.links, bc.bridge)) throw checkFailed(`bridge ${bc.bridge} is missing`);
  const veth = linkByName(onHost.links, host);
  if (!veth) throw checkFailed(`host veth ${host} is missing`);
  if (veth.master !== bc.bridge) throw checkFailed(`host veth ${host} is not attached to ${bc.bridge}`);
}
