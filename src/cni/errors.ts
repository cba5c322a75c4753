// CNI error codes (SPEC "Error" section). 0-99 are the spec's; 100+ are podwire's own.
import { KernelError } from '../kernel/errors.js';

export const Code = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IO: 5,
  Decode: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  StatusNotAvailable: 50,
  StatusLimitedConnectivity: 51,
  // podwire's own
  NoFreeAddress: 100,
  AddressUnavailable: 101,
  InterfaceExists: 102,
  Kernel: 103,
  Delegate: 104,
  CheckFailed: 105,
  Internal: 999,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = '',
  ) {
    super(msg);
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details: string } {
    return { cniVersion, code: this.code, msg: this.message, details: this.details };
  }
}

/**
 * Any thrown value as a CniError, so every failure reaches stdout in the spec's shape: the kernel's refusals
 * (plain errors from kernel/) are podwire's code 103, a system call's failure is an I/O error.
 */
export function asCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof KernelError) return new CniError(Code.Kernel, e.message, e.details);
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && typeof err.syscall === 'string') {
    return new CniError(Code.IO, `${err.syscall} failed: ${err.message}`);
  }
  return new CniError(Code.Internal, err instanceof Error ? err.message : String(e));
}

export const invalidConfig = (key: string, why: string): CniError =>
  new CniError(Code.InvalidConfig, `invalid network config: ${key}: ${why}`);

export const invalidEnv = (name: string, why: string): CniError => new CniError(Code.InvalidEnv, `invalid environment: ${name}: ${why}`);
