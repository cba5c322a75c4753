// @ts-check
// Request/response latency, as netperf's TCP_RR measures it (Debian has no netperf): one TCP connection,
// one byte each way per transaction, Nagle off, back to back. `node rr.mjs server HOST PORT` answers;
// `node rr.mjs client HOST PORT [N]` runs N transactions (after 200 of warm-up) and prints
// {"p50": µs, "p99": µs, "n": N}. Both ends are the same program everywhere, so its own cost cancels out
// when a path is compared with the underlay in the same run. Bounded: N transactions, then it stops; the
// server answers one connection and exits.
import { connect, createServer } from 'node:net';

const [mode, host, portText, nText] = process.argv.slice(2);
const port = Number(portText);
if (mode === 'server') {
  const server = createServer((s) => {
    s.setNoDelay(true);
    s.on('data', (d) => s.write(d));
    s.on('close', () => server.close());
  });
  server.listen(port, host, () => process.stdout.write('listening\n'));
  setTimeout(() => process.exit(0), 60_000).unref();
} else {
  const n = Number(nText ?? 3000);
  const warm = 200;
  const s = connect({ host, port, noDelay: true });
  /** @type {number[]} */
  const times = [];
  let sent = 0n;
  const one = Buffer.from([1]);
  const next = () => {
    sent = process.hrtime.bigint();
    s.write(one);
  };
  s.on('connect', next);
  s.on('data', () => {
    const i = times.push(Number(process.hrtime.bigint() - sent) / 1000);
    if (i < n + warm) return next();
    const t = times.slice(warm).sort((a, b) => a - b);
    const q = (/** @type {number} */ p) => t[Math.min(t.length - 1, Math.floor(p * t.length))];
    process.stdout.write(JSON.stringify({ p50: q(0.5), p99: q(0.99), n: t.length }) + '\n');
    s.end();
  });
  s.on('error', (e) => {
    process.stderr.write(`rr: ${e.message}\n`);
    process.exit(1);
  });
}
