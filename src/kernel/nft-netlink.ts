// Set elements added and deleted without running `nft`: one nf_tables batch written straight to the
// kernel over a netlink socket (sys().netlink, libc under Bun), as `nft -f -` would write it — the batch
// is one transaction, all of it or nothing. It saves ADD and DEL a process each (~1.5 ms of wall time and
// ~2.5 ms of CPU, measured) for what is a few hundred bytes. Only elements of sets and maps that exist:
// anything else (the table itself, a missing set) is for `nft`, which the caller falls back to.
//
//   nlmsghdr { len u32, type u16, flags u16, seq u32, pid u32 } nfgenmsg { family u8, version u8, res_id be16 }
//   BATCH_BEGIN (res_id: the nf_tables subsystem)
//   NEWSETELEM | DELSETELEM { TABLE, SET, ELEMENTS { LIST_ELEM { KEY { VALUE }, DATA { VALUE } }... } }...
//   BATCH_END
// Every message in between asks for an ack; the kernel answers each with an NLMSG_ERROR (0: done), after
// the whole batch. Layouts from linux/netlink.h, linux/netfilter/nfnetlink.h and nf_tables.h.
import { sys } from '../runtime/files.js';

const NETLINK_NETFILTER = 12;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const NLM_F_CREATE = 0x400;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
const NLA_F_NESTED = 0x8000;
// NFTA_SET_ELEM_LIST_*, NFTA_LIST_ELEM, NFTA_SET_ELEM_*, NFTA_DATA_VALUE
const LIST_TABLE = 1;
const LIST_SET = 2;
const LIST_ELEMENTS = 3;
const LIST_ELEM = 1;
const ELEM_KEY = 1;
const ELEM_DATA = 2;
const DATA_VALUE = 1;

/** nftables' address families (NFPROTO_*). */
export const NFPROTO = { inet: 1, ip: 2, bridge: 7, ip6: 10 } as const;

/** One element: its set, its key's bytes (a concatenation's fields each padded to 4), a map's value. */
export interface NftElement {
  set: string;
  key: Uint8Array;
  data?: Uint8Array;
}

/** The kernel's register layout for a concatenation: each field in its own 4-byte words. */
export function concat(...fields: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(fields.reduce((n, f) => n + Math.ceil(f.length / 4) * 4, 0));
  let at = 0;
  for (const f of fields) {
    out.set(f, at);
    at += Math.ceil(f.length / 4) * 4;
  }
  return out;
}

/** An interface name as nftables' ifname type holds it: 16 bytes, zero-padded. */
export function ifnameBytes(name: string): Uint8Array {
  const b = new Uint8Array(16);
  b.set(new TextEncoder().encode(name).subarray(0, 15));
  return b;
}

/** A u32 as meta mark holds it: in the host's byte order (little-endian on x86_64 and arm64). */
export function markBytes(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

const align4 = (n: number) => (n + 3) & ~3;

/** A netlink attribute: header, payload, padding; `nested` for one made of attributes. */
function attr(type: number, payload: Uint8Array, nested = false): Uint8Array {
  const out = new Uint8Array(align4(4 + payload.length));
  const v = new DataView(out.buffer);
  v.setUint16(0, 4 + payload.length, true);
  v.setUint16(2, type | (nested ? NLA_F_NESTED : 0), true);
  out.set(payload, 4);
  return out;
}
function join(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
const cstr = (s: string): Uint8Array => new TextEncoder().encode(`${s}\0`);

/** One netlink message with its nfgenmsg. */
function message(type: number, flags: number, seq: number, family: number, resId: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(20 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, out.length, true);
  v.setUint16(4, type, true);
  v.setUint16(6, flags, true);
  v.setUint32(8, seq, true);
  v.setUint32(12, 0, true);
  out[16] = family;
  out[17] = 0; // NFNETLINK_V0
  v.setUint16(18, resId, false);
  out.set(body, 20);
  return out;
}

/**
 * The batch (pure): per operation and set, in the order given, one message with its elements; the seq
 * numbers count up from `seq`. Returns the bytes and the seq numbers that will be acked.
 */
export function elementsBatch(
  family: number,
  table: string,
  ops: readonly { op: 'add' | 'delete'; elements: readonly NftElement[] }[],
  seq = 1,
): { bytes: Uint8Array; acked: number[] } {
  const msgs: Uint8Array[] = [message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq++, 0, NFNL_SUBSYS_NFTABLES, new Uint8Array())];
  const acked: number[] = [];
  for (const { op, elements } of ops) {
    // Consecutive elements of one set go in one message.
    for (let i = 0; i < elements.length;) {
      const set = elements[i]!.set;
      const list: Uint8Array[] = [];
      for (; i < elements.length && elements[i]!.set === set; i++) {
        const e = elements[i]!;
        const key = attr(ELEM_KEY, attr(DATA_VALUE, e.key), true);
        const data = e.data && op === 'add' ? [attr(ELEM_DATA, attr(DATA_VALUE, e.data), true)] : [];
        list.push(attr(LIST_ELEM, join([key, ...data]), true));
      }
      const body = join([attr(LIST_TABLE, cstr(table)), attr(LIST_SET, cstr(set)), attr(LIST_ELEMENTS, join(list), true)]);
      const type = (NFNL_SUBSYS_NFTABLES << 8) | (op === 'add' ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
      acked.push(seq);
      msgs.push(message(type, NLM_F_REQUEST | NLM_F_ACK | (op === 'add' ? NLM_F_CREATE : 0), seq++, family, 0, body));
    }
  }
  msgs.push(message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES, new Uint8Array()));
  return { bytes: join(msgs), acked };
}

/** The NLMSG_ERROR answers in a datagram: [seq, error] (0, or a negative errno). */
export function acksIn(d: Uint8Array): [seq: number, error: number][] {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const out: [number, number][] = [];
  for (let at = 0; at + 16 <= d.length;) {
    const len = v.getUint32(at, true);
    if (len < 16) break;
    if (v.getUint16(at + 4, true) === NLMSG_ERROR && at + 20 <= d.length) out.push([v.getUint32(at + 8, true), v.getInt32(at + 16, true)]);
    at += align4(len);
  }
  return out;
}

/** Why a batch was refused: the errno (positive) of the first message the kernel refused. */
export class NftNetlinkError extends Error {
  constructor(
    readonly errno: number,
    what: string,
  ) {
    super(`nf_tables refused ${what} (errno ${errno})`);
  }
}
export const ENOENT = 2;

/**
 * Adds and deletes elements in one transaction. true: done; undefined: this runtime cannot (run `nft`
 * instead). Throws NftNetlinkError when the kernel refuses it (ENOENT: the table or a set is not there),
 * and then nothing of it was done.
 */
export function applyElements(
  family: number,
  table: string,
  ops: readonly { op: 'add' | 'delete'; elements: readonly NftElement[] }[],
): true | undefined {
  const { bytes, acked } = elementsBatch(family, table, ops);
  if (!acked.length) return true;
  const first = acked[0]! - 1;
  const answered = new Map<number, number>();
  const got = sys().netlink(NETLINK_NETFILTER, bytes, (d) => {
    for (const [seq, err] of acksIn(d)) answered.set(seq, err);
    // Every message acked, or the batch itself refused (an answer to BATCH_BEGIN).
    return acked.every((s) => answered.has(s)) || answered.has(first);
  });
  if (!got) return undefined;
  const refused = [...answered].find(([, err]) => err !== 0);
  if (refused) throw new NftNetlinkError(-refused[1], `elements of ${table} (message ${refused[0] - first} of ${acked.length})`);
  return true;
}
