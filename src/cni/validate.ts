// Checks for every value that ends up in a file path, a link name or a command line.
// They run before anything touches disk or kernel (SPEC: container ID and network name rules).

const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Container IDs and network names become file names under dataDir: no '/', no leading '.', bounded. */
export function validID(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 1024 && ID_RE.test(s);
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

/**
 * A namespace path is an argv element for nsenter and a word in an `ip -batch` line, so it must be one
 * word: absolute, bounded, no whitespace, quotes, backslashes or control characters.
 */
export function validNetnsPath(s: unknown): s is string {
  return typeof s === 'string' && s.startsWith('/') && s.length <= 4096 && !/[\s"'\\#\0-\x1f\x7f]/.test(s);
}

/** An absolute file path from the config (logFile, dataDir, subnetFile). */
export const validAbsPath = validNetnsPath;

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** A unicast Ethernet address (the low bit of the first octet is the multicast bit). */
export function validMac(s: unknown): s is string {
  return typeof s === 'string' && MAC_RE.test(s) && (parseInt(s.slice(0, 2), 16) & 1) === 0;
}
