// The CNI error code a call throws (undefined when it does not throw), for tables of bad input.
import type { CniError } from '../../src/cni/errors.js';

export function thrownCode(f: () => unknown): number | undefined {
  try {
    f();
  } catch (e) {
    return (e as CniError).code;
  }
  return undefined;
}
