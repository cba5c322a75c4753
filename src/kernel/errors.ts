// A command that changes or reads the kernel failed. Plain errors: what the failure means to a caller (a
// CNI code, a CLI message) is decided by that caller; the CNI skeleton reports these as code 103, as the
// reference plugins' pkg/ip returns plain errors and only the plugin makes a CNI error of them.
export class KernelError extends Error {
  constructor(
    msg: string,
    /** The command's own words (stderr), when there are any. */
    readonly details = '',
  ) {
    super(msg);
  }
}

/** A command's failure as a KernelError: "<what>: <its first line of stderr>". */
export const commandFailed = (what: string, stderr: string): KernelError => new KernelError(`${what}: ${stderr.trim()}`, stderr.trim());
