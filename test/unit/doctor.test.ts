// What doctor prints for people: each fix as one shell line that does exactly what its argument vector does.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { renderDoctor, shellLine } from '../../src/explore/doctor.js';

describe('doctor output', () => {
  it('quotes what a shell would split or expand, and pipes stdin in', () => {
    expect(shellLine({ argv: ['sysctl', '-w', 'net.ipv4.conf.podwire/1.rp_filter=2'] })).toBe(
      'sysctl -w net.ipv4.conf.podwire/1.rp_filter=2',
    );
    const fix = { argv: ['env', 'CNI_NETNS=', 'sh', '-c', 'cat; echo " $X"'], input: `{"name":"it's"}` };
    const line = shellLine(fix);
    // the line, run by a shell, does what the vector does
    expect(execFileSync('sh', ['-c', line], { encoding: 'utf8', env: { PATH: process.env.PATH, X: 'x' } })).toBe(`{"name":"it's"} x\n`);
  });

  it('shows why and the fix under each problem, marks the ones --fix applies, and ends with the count', () => {
    const text = renderDoctor({
      node: 'node1',
      problems: 1,
      findings: [
        {
          check: 'ip-forward',
          ok: false,
          what: { id: 'dr.forward', p: { name: 'net.ipv4.ip_forward', family: 'IPv4' } },
          why: { id: 'dr.forward.why', p: { name: 'net.ipv4.ip_forward', family: 'IPv4' } },
          fix: [{ argv: ['sysctl', '-w', 'net.ipv4.ip_forward=1'] }],
          safe: true,
        },
        { check: 'mtu', ok: true, what: { id: 'dr.forward.ok', p: { name: 'net.ipv4.ip_forward' } } },
      ],
    });
    expect(text).toBe(
      'FAIL ip-forward         net.ipv4.ip_forward is 0: this node does not route IPv4\n' +
        "     why: IPv4 packets between cni0, the VXLAN device and the uplink are dropped: pods reach only their own node's pods\n" +
        '     fix (--fix does it): sysctl -w net.ipv4.ip_forward=1\n' +
        'ok   mtu                net.ipv4.ip_forward=1\n' +
        '\n' +
        '1 problem(s) on node1\n',
    );
  });
});
