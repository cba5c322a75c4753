// What an attachment's objects on the node are called. All of it derives from (network, container ID,
// ifname), so DEL, CHECK, GC and `podwire status` find them again without reading anything — even when
// the pod's namespace is gone — and nothing has to be stored.
import { sha256Hex } from '../hash.js';
import { macFromHex } from '../net/mac.js';

export interface AttachmentNames {
  /** The host end of the veth pair: "veth" + 8 hex, the reference bridge plugin's form. */
  hostVeth: string;
  /** The pod's nat chains (iptables allows chain names of up to 28 characters). */
  masqChain: string;
  hostportChain: string;
  /** Both ends' MACs: locally administered, unicast, fixed for the attachment (a repeated ADD gets the same). */
  podMac: string;
  hostMac: string;
}

export const HOST_VETH_RE = /^veth[0-9a-f]{8}$/;

export function attachmentNames(network: string, containerID: string, ifname: string): AttachmentNames {
  const h = sha256Hex(`${network}\0${containerID}\0${ifname}`);
  return {
    hostVeth: `veth${h.slice(0, 8)}`,
    masqChain: `PW-MASQ-${h.slice(0, 16)}`,
    hostportChain: `PW-HP-${h.slice(0, 16)}`,
    podMac: macFromHex(h.slice(16, 28)),
    hostMac: macFromHex(h.slice(28, 40)),
  };
}
