// Drops as values and words: ulogd's JSON lines read (samples as ulogd2 2.0.8 wrote them on this
// machine), each drop explained with the pod its port or address names, and said in both languages.
import { afterEach, describe, expect, it } from 'vitest';
import { parseUlogdLine, ulogdConfig } from '../../src/drops/ulogd.js';
import { dropLabels, dropText, explainDrop, reasonOf } from '../../src/drops/drop.js';
import { setLang } from '../../src/i18n/index.js';

const GUARD_IP4 =
  '{"timestamp": "2026-12-05T06:06:58.535798", "dvc": "Netfilter", "raw.pktlen": 84, "raw.pktcount": 1, "oob.prefix": "podwire-guard ip4: ", "oob.time.sec": 1796450818, "oob.time.usec": 535798, "oob.mark": 161164861, "oob.ifindex_in": 2, "oob.hook": 0, "raw.mac_len": 14, "oob.family": 7, "oob.protocol": 2048, "ip.protocol": 17, "ip.ttl": 64, "src_port": 40000, "dest_port": 5000, "oob.in": "br0", "oob.out": "", "src_ip": "10.244.1.3", "dest_ip": "10.244.1.4", "mac.saddr.str": "ee:5c:8b:75:f9:fc", "mac.daddr.str": "ba:6f:28:af:e4:f4"}';
const POLICY_IN =
  '{"oob.prefix": "podwire-policy ingress: ", "oob.time.sec": 1796450819, "oob.time.usec": 540278, "oob.mark": 0, "oob.family": 2, "oob.protocol": 2048, "ip.protocol": 6, "src_port": 51000, "dest_port": 80, "src_ip": "10.244.2.5", "dest_ip": "10.244.1.2"}';
const ARP =
  '{"oob.prefix": "podwire-guard arp: ", "oob.time.sec": 1796450819, "oob.mark": 161164861, "oob.protocol": 2054, "arp.saddr.str": "218.98.1.181", "mac.saddr.str": "ce:a1:4a:18:4b:ef"}';
const NOT_OURS = '{"oob.prefix": "someone-else: ", "oob.time.sec": 1}';

const bindingA = { port: 'veth099b2e3d', mac: '02:42:0a:f4:01:02', ips: ['10.244.1.2', 'fd00:10:244:1::2'] };
const look = {
  binding: (p: string) => (p === bindingA.port ? bindingA : undefined),
  pod: (ip: string) => ({ '10.244.1.2': 'x/a', '10.244.2.5': 'y/a' })[ip],
  policies: (ip: string, dir: string) => (ip === '10.244.1.2' && dir === 'ingress' ? ['x/only-y', 'x/web'] : []),
};

afterEach(() => setLang('en'));

describe("ulogd's lines", () => {
  it('a guard drop: its prefix, its port id as mark, the packet; ours only', () => {
    expect(parseUlogdLine(GUARD_IP4)).toEqual({
      prefix: 'podwire-guard ip4',
      mark: 0x099b2e3d,
      ethertype: 0x0800,
      src: '10.244.1.3',
      dst: '10.244.1.4',
      l4: 17,
      sport: 40000,
      dport: 5000,
      smac: 'ee:5c:8b:75:f9:fc',
      time: 1796450818535,
    });
    expect(parseUlogdLine(NOT_OURS)).toBeUndefined();
    expect(parseUlogdLine('not json')).toBeUndefined();
    // ulogd's ARP addresses are garbage (2.0.8): left out rather than shown.
    expect(parseUlogdLine(ARP)).not.toHaveProperty('src');
  });

  it("the configuration reads one group into JSON on ulogd's standard output", () => {
    const c = ulogdConfig('/usr/lib/x86_64-linux-gnu/ulogd', 7461, '/tmp/x/ulogd.log', '/tmp/x/drops.sock');
    expect(c).toContain('group=7461');
    expect(c).toContain('mode="unix"');
    expect(c).toContain('file="/tmp/x/drops.sock"');
    expect(c).toContain('stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,mac2str1:HWHDR,json1:JSON');
  });
});

describe('a drop explained', () => {
  it('a forged source names the pod on the port, not the address it wrote', () => {
    const d = explainDrop(parseUlogdLine(GUARD_IP4)!, look)!;
    expect(d).toMatchObject({ reason: 'ip4', port: 'veth099b2e3d', pod: 'x/a', own: bindingA.ips, src: '10.244.1.3', proto: 'udp' });
    expect(dropLabels(d)).toEqual({ reason: 'ip4', namespace: 'x', policy: '' });
    expect(dropText(d)).toBe(
      '06:06:58.535 dropped UDP 10.244.1.3:40000 → 10.244.1.4:5000: x/a (on veth099b2e3d) sent it from 10.244.1.3, which is not its address (its own: 10.244.1.2, fd00:10:244:1::2)',
    );
    setLang('zh');
    expect(dropText(d)).toContain('x/a（veth099b2e3d） 以 10.244.1.3 为源地址发出');
  });

  it('a policy denial names the pod it was for and the policies isolating it', () => {
    const d = explainDrop(parseUlogdLine(POLICY_IN)!, look)!;
    expect(d).toMatchObject({ reason: 'ingress', pod: 'x/a', policies: ['x/only-y', 'x/web'], proto: 'tcp', dport: 80 });
    expect(dropLabels(d)).toEqual({ reason: 'ingress', namespace: 'x', policy: 'x/only-y,x/web' });
    expect(dropText(d)).toContain('to x/a, which x/only-y, x/web isolate for ingress');
  });

  it('a port podwire does not know is still named; every prefix maps to its reason', () => {
    const d = explainDrop(parseUlogdLine(GUARD_IP4)!, { binding: () => undefined })!;
    expect(d.pod).toBeUndefined();
    expect(dropText(d)).toContain('the pod on veth099b2e3d sent it from 10.244.1.3');
    expect(['podwire-guard mac', 'podwire-guard vxlan', 'podwire-policy egress', 'podwire-gate to', 'podwire-x y'].map(reasonOf)).toEqual([
      'mac',
      'vxlan',
      'egress',
      'held',
      undefined,
    ]);
  });
});
