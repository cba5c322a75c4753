// SHA-256 for names derived from an attachment (host veth, per-pod chains). Under Bun its native hasher;
// under Node, node:crypto. Importing node:crypto under Bun costs ~6 ms per process (measured), more than
// the rest of a pod's ADD in podwire's own code.
import type * as Crypto from 'node:crypto';

interface BunHasher {
  CryptoHasher: new (algorithm: 'sha256') => { update(s: string): { digest(enc: 'hex'): string } };
}
const bun = (globalThis as { Bun?: BunHasher }).Bun;

export function sha256Hex(s: string): string {
  if (bun) return new bun.CryptoHasher('sha256').update(s).digest('hex');
  const { createHash } = process.getBuiltinModule('node:crypto') as typeof Crypto;
  return createHash('sha256').update(s).digest('hex');
}
