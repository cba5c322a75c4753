// Text that arrives in chunks (a socket, a stream) cut into whole lines: a chunk may end mid-line.

/** A chunk handler that calls `onLine` for each complete line, keeping the unfinished tail for the next chunk. */
export function lineSplitter(onLine: (line: string) => void): (chunk: string) => void {
  let buf = '';
  return (chunk) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
  };
}
