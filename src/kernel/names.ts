// What an attachment's objects on the node are called. All of it derives from (network, container ID,
// ifname), so DEL, CHECK, GC and `podwire status` find them again without reading anything — even when
// the pod's namespace is gone — and nothing has to be stored.
import { sha256Hex } from '../runtime/hash.js';
import { macFromHex } from '../net/mac.js';

export interface AttachmentNames {
  /** The host end of the veth pair: "veth" + 8 hex, the reference bridge plugin's form. */
  hostVeth: string;
  /** The pod's nat chains (iptables allows chain names of up to 28 characters). */
  masqChain: string;
  hostportChain: string;
  /** The 16 hex digits both chains end in: what the attachment's nftables elements carry in their comment. */
  owner: string;
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
    owner: h.slice(0, 16),
    podMac: macFromHex(h.slice(16, 28)),
    hostMac: macFromHex(h.slice(28, 40)),
  };
}

/** Bytes of `s` in UTF-8 (a loop: Buffer.byteLength's first call costs ~0.2 ms under Bun). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? (i++, 4) : 3;
  }
  return n;
}

/** Linux interface names: 1-15 bytes, no '/', ':' or whitespace, not "." or "..". */
export function validIfname(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && utf8Length(s) <= 15 && s !== '.' && s !== '..' && !/[/:\s\0]/.test(s);
}
