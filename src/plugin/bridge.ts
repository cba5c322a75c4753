// The podwire plugin: a veth pair from the pod's namespace to the node's bridge, addresses from IPAM, and
// the pod's nat rules. One file per verb, each a plan or a straight line over the same parts:
//   add.ts    ADD as a plan (plan.ts): guard, address, host side, pod side, forwarding, nat
//   del.ts    DEL: veths, nat rules and the address, side by side, none left on any failure
//   check.ts  CHECK: the kernel against ADD's result      gc.ts, status.ts: GC and STATUS over the IPAM
// Their parts: host.ts (bridge, veth pair, the node guard), pod.ts (the pod's batch, forwarding), nat.ts
// (masquerade and hostPorts on the firewall backend), reclaim.ts (what gone attachments left).
import type { Plugin } from '../cni/types.js';
import { add } from './add.js';
import { check } from './check.js';
import { del } from './del.js';
import { gc } from './gc.js';
import { status } from './status.js';

export const bridgePlugin: Plugin = { add, del, check, gc, status };
