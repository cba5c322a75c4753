// The nf_tables batch podwire writes to the kernel for set elements (src/kernel/nft-netlink.ts), read back
// byte by byte: the kernel's own layout of concatenated keys, the batch's frame, one message per set, the
// acks. What the kernel makes of it is tested against nft itself in test/integration/spoof.test.ts.
import { describe, expect, it } from 'vitest';
import { NFPROTO, acksIn, concat, elementsBatch, ifnameBytes, markBytes } from '../../src/kernel/nft-netlink.js';
import { ipBytes, parseIP } from '../../src/net/ip.js';
import { macBytes } from '../../src/net/mac.js';

/** The messages of a batch: [type, flags, seq, family, res_id, body]. */
function messages(b: Uint8Array): [number, number, number, number, number, Uint8Array][] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: [number, number, number, number, number, Uint8Array][] = [];
  for (let at = 0; at < b.length;) {
    const len = v.getUint32(at, true);
    out.push([
      v.getUint16(at + 4, true),
      v.getUint16(at + 6, true),
      v.getUint32(at + 8, true),
      b[at + 16]!,
      v.getUint16(at + 18, false),
      b.slice(at + 20, at + len),
    ]);
    at += len;
  }
  return out;
}

/** A nest of attributes: [type without the nested flag, payload]. */
function attrs(b: Uint8Array): [number, Uint8Array][] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: [number, Uint8Array][] = [];
  for (let at = 0; at < b.length;) {
    const len = v.getUint16(at, true);
    out.push([v.getUint16(at + 2, true) & 0x7fff, b.slice(at + 4, at + len)]);
    at += (len + 3) & ~3;
  }
  return out;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('set elements as nf_tables netlink', () => {
  it("a concatenation: each field in whole 4-byte words (ifname 16, MAC 6 -> 8, IPv4 4, IPv6 16); a mark in the host's order", () => {
    const k = concat(ifnameBytes('veth1a2b3c4d'), macBytes('0e:70:c0:a8:3c:0d'), ipBytes(parseIP('10.244.1.2')!));
    expect(k.length).toBe(28);
    expect(hex(k)).toBe(`${hex(new TextEncoder().encode('veth1a2b3c4d'))}00000000` + '0e70c0a83c0d0000' + '0af40102');
    expect(concat(ifnameBytes('v'), ipBytes(parseIP('fd00::1')!)).length).toBe(32);
    expect(hex(ipBytes(parseIP('fd00::1')!))).toBe('fd000000000000000000000000000001');
    expect(hex(markBytes(0x1a2b3c4d))).toBe('4d3c2b1a');
    // nftables' ifname holds at most 15 characters and its terminator
    expect(ifnameBytes('x'.repeat(20))[15]).toBe(0);
  });

  it('one batch: BEGIN, a message per run of one set (acked, seq counting up), END; deletes carry keys only', () => {
    const port = ifnameBytes('veth00000001');
    const { bytes, acked } = elementsBatch(NFPROTO.bridge, 'podwire-guard', [
      {
        op: 'add',
        elements: [
          { set: 'ips4', key: concat(port, ipBytes(parseIP('10.0.0.2')!)) },
          { set: 'ips4', key: concat(port, ipBytes(parseIP('10.0.0.3')!)) },
          { set: 'portids', key: port, data: markBytes(1) },
        ],
      },
      { op: 'delete', elements: [{ set: 'portids', key: port, data: markBytes(1) }] },
    ]);
    const m = messages(bytes);
    expect(m.map(([type, flags, seq, family, res]) => [type.toString(16), flags.toString(16), seq, family, res])).toEqual([
      ['10', '1', 1, 0, 10], // BATCH_BEGIN for the nf_tables subsystem
      ['a0c', '405', 2, 7, 0], // NEWSETELEM: request, ack, create; bridge
      ['a0c', '405', 3, 7, 0],
      ['a0e', '5', 4, 7, 0], // DELSETELEM
      ['11', '1', 5, 0, 10], // BATCH_END
    ]);
    expect(acked).toEqual([2, 3, 4]);
    const [table, set, list] = attrs(m[1]![5]);
    expect([table![0], new TextDecoder().decode(table![1])]).toEqual([1, 'podwire-guard\0']);
    expect([set![0], new TextDecoder().decode(set![1])]).toEqual([2, 'ips4\0']);
    const elems = attrs(list![1]);
    expect(elems).toHaveLength(2); // both IPv4 elements in one message
    const [key] = attrs(elems[1]![1]);
    expect(hex(attrs(key![1])[0]![1])).toBe(hex(concat(port, ipBytes(parseIP('10.0.0.3')!))));
    // the map's element: key and data; its delete: the key alone
    expect(attrs(attrs(attrs(m[2]![5])[2]![1])[0]![1]).map(([t]) => t)).toEqual([1, 2]);
    expect(attrs(attrs(attrs(m[3]![5])[2]![1])[0]![1]).map(([t]) => t)).toEqual([1]);
  });

  it("the kernel's answers: NLMSG_ERROR per acked message, 0 or a negative errno, several in one datagram", () => {
    const ack = (seq: number, err: number) => {
      const b = new Uint8Array(36);
      const v = new DataView(b.buffer);
      v.setUint32(0, 36, true);
      v.setUint16(4, 2, true);
      v.setUint32(8, seq, true);
      v.setInt32(16, err, true);
      return b;
    };
    const d = new Uint8Array(72);
    d.set(ack(2, 0));
    d.set(ack(3, -2), 36);
    expect(acksIn(d)).toEqual([
      [2, 0],
      [3, -2],
    ]);
    expect(acksIn(new Uint8Array(0))).toEqual([]);
  });
});
