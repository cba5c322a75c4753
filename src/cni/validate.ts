// Checks of what the CNI protocol hands a plugin, before anything touches disk or kernel: container IDs and
// network names (the SPEC's rule), and paths that become command arguments. Interface names are checked by
// kernel/names.ts (validIfname), MACs by net/mac.ts (validMac).

const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Container IDs and network names become file names under dataDir: no '/', no leading '.', bounded. */
export function validID(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 1024 && ID_RE.test(s);
}

/**
 * A namespace path is an argv element for nsenter and a word in an `ip -batch` line, so it must be one
 * word: absolute, bounded, no whitespace, quotes, backslashes or control characters.
 */
export function validNetnsPath(s: unknown): s is string {
  return typeof s === 'string' && s.startsWith('/') && s.length <= 4096 && !/[\s"'\\#\0-\x1f\x7f]/.test(s);
}

/** An absolute file path from the config (logFile, dataDir, subnetFile). */
export const validAbsPath = validNetnsPath;
