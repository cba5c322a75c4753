// Services in the lab: the nat rules kube-proxy writes (iptables mode, or nftables mode with --proxy nftables) for a ClusterIP and a NodePort
// Service, installed on every node, with pods serving the targetPort. It proves that the pod network plays
// along with kube-proxy: a Cluster IP reaches a backend on the same node and on another node, a backend
// reaches itself through its own Service (hairpin), and a host outside the cluster reaches NodeIP:nodePort
// on every node. Chain names and rule shapes follow kube-proxy's (KUBE-SERVICES → KUBE-SVC-… →
// KUBE-SEP-… DNAT, KUBE-MARK-MASQ, KUBE-POSTROUTING, KUBE-NODEPORTS). A dual-stack lab's Services have
// both families (ipFamilies: [IPv4, IPv6], a Cluster IP in each): kube-proxy writes the IPv6 half with
// ip6tables, and every proof runs in both.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../runtime/run.js';
import type { Family } from '../node/cluster.js';
import { type Lab, type LabPod, PLANS } from './lab.js';
import { type Check, type ProofId } from './proofs.js';
import { httpGet, pingAsync } from './netns.js';
import { formatIP, joinHostPort, parseIP } from '../net/ip.js';

/** kubeadm's default Service network: Cluster IPs are virtual, only kube-proxy's DNAT rules know them. */
export const SERVICE_CIDR = PLANS[4].serviceCIDR;
export const TARGET_PORT = 8080;
/** The last node's backend also publishes its port on that node's IP (hostPort, done by podwire). */
export const HOST_PORT = 8081;
/** The nodePort of the externalTrafficPolicy: Local Service. */
export const LOCAL_NODE_PORT = 30081;
/** Where the outside host answers (and says which address it saw). */
export const OUTSIDE_PORT = 8082;

export interface LabService {
  name: string;
  /** The first family's Cluster IP; `clusterIPs` has one per family of the lab (as Service.spec.clusterIPs). */
  clusterIP: string;
  clusterIPs: string[];
  port: number;
  targetPort: number;
  nodePort?: number;
  /** Local: only the nodes that run a backend answer the nodePort, and the backend sees the client's own address. */
  externalTrafficPolicy?: 'Local';
  backend: LabPod;
}

/** kube-proxy's chain names: a prefix and 16 characters of a base32 SHA-256 of the service port's name. */
function chainName(prefix: string, key: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = createHash('sha256').update(key).digest();
  let bits = '';
  for (const b of bytes.subarray(0, 10)) bits += b.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i + 5 <= bits.length && out.length < 16; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return prefix + out;
}

/**
 * The nat table kube-proxy would write for these Services in one family (iptables-restore input for
 * iptables or ip6tables; pure). `k` is the family's index in the Services' and pods' address lists;
 * `node`: the node it is for (an externalTrafficPolicy Local Service's nodePort exists only where its
 * backend runs; elsewhere kube-proxy drops it in its filter table, and here nothing listens).
 */
/** The KUBE-SEP- chain of one endpoint of a Service. */
const sepChain = (s: LabService, backend: string): string => chainName('KUBE-SEP-', `lab/${s.name}:http:${backend}`);

export function kubeProxyRules(
  services: readonly LabService[],
  f: Family = 4,
  k = 0,
  node?: string,
  stale: readonly string[] = [],
): string[] {
  const clusterCIDR = PLANS[f].clusterCIDR;
  const host = f === 4 ? 32 : 128;
  const at = (ip: string, port: number) => (f === 4 ? `${ip}:${port}` : `[${ip}]:${port}`);
  const chains = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'];
  const rules = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  ];
  for (const s of services) {
    const key = `lab/${s.name}:http`;
    const svc = chainName('KUBE-SVC-', key);
    const backend = s.backend.ips[k]!;
    const clusterIP = s.clusterIPs[k]!;
    const sep = sepChain(s, backend);
    const ep = at(backend, s.targetPort);
    chains.push(svc, sep);
    rules.push(
      `-A KUBE-SERVICES -d ${clusterIP}/${host} -p tcp -m comment --comment "${key} cluster IP" -m tcp --dport ${s.port} -j ${svc}`,
      // From outside the pod network: masquerade, so the reply comes back through this node.
      `-A ${svc} ! -s ${clusterCIDR} -d ${clusterIP}/${host} -p tcp -m comment --comment "${key} cluster IP" -m tcp --dport ${s.port} ` +
        `-j KUBE-MARK-MASQ`,
      `-A ${svc} -m comment --comment "${key} -> ${ep}" -j ${sep}`,
      // The backend calling its own Service (hairpin): masquerade, or it would answer itself directly.
      `-A ${sep} -s ${backend}/${host} -m comment --comment "${key}" -j KUBE-MARK-MASQ`,
      `-A ${sep} -p tcp -m comment --comment "${key}" -m tcp -j DNAT --to-destination ${ep}`,
    );
    if (s.nodePort && s.externalTrafficPolicy === 'Local') {
      // Local: no masquerade (the backend sees the client's own address), local endpoints only (KUBE-SVL-).
      if (node === undefined || node === s.backend.node.name) {
        const ext = chainName('KUBE-EXT-', key);
        const svl = chainName('KUBE-SVL-', key);
        chains.push(ext, svl);
        rules.push(
          `-A KUBE-NODEPORTS -p tcp -m comment --comment "${key}" -m tcp --dport ${s.nodePort} -j ${ext}`,
          `-A ${ext} -m comment --comment "${key} external traffic, Local: no masquerade" -j ${svl}`,
          `-A ${svl} -m comment --comment "${key} -> ${ep}" -j ${sep}`,
        );
      }
    } else if (s.nodePort) {
      const ext = chainName('KUBE-EXT-', key);
      chains.push(ext);
      rules.push(
        `-A KUBE-NODEPORTS -p tcp -m comment --comment "${key}" -m tcp --dport ${s.nodePort} -j ${ext}`,
        `-A ${ext} -m comment --comment "masquerade traffic for ${key} external destinations" -j KUBE-MARK-MASQ`,
        `-A ${ext} -j ${svc}`,
      );
    }
  }
  // Last in KUBE-SERVICES, as kube-proxy puts it: anything addressed to the node itself may be a nodePort.
  rules.push('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
  // Chains of endpoints that are gone: flushed and deleted, as kube-proxy does.
  const gone = stale.filter((c) => !chains.includes(c)).flatMap((c) => [`-F ${c}`, `-X ${c}`]);
  return ['*nat', ...chains.map((c) => `:${c} - [0:0]`), ...rules, ...gone, 'COMMIT', ''];
}

/**
 * What kube-proxy in nftables mode (GA since 1.33) writes for these Services in one family, as its proxier
 * lays it out: table `ip kube-proxy` (`ip6` for IPv6), the verdict maps `service-ips` (address . protocol
 * . port) and `service-nodeports` (protocol . port, for the node's own addresses in `nodeport-ips`), a
 * `service-` chain per Service port choosing an endpoint with `numgen random`, an `external-` chain per
 * nodePort, an `endpoint-` chain per endpoint with its DNAT, and `mark-for-masquerade` / `masquerading`
 * with the same 0x4000 mark as iptables mode. One `nft -f -` script that replaces the whole table in one
 * transaction (pure).
 */
export function kubeProxyNftRules(services: readonly LabService[], f: Family, k: number, node: { name: string; nodeIP: string }): string[] {
  const fam = f === 4 ? 'ip' : 'ip6';
  const T = `${fam} kube-proxy`;
  const addr = f === 4 ? 'ipv4_addr' : 'ipv6_addr';
  const clusterCIDR = PLANS[f].clusterCIDR;
  const name = (kind: string, s: LabService, tail = '') => {
    const key = `lab/${s.name}/tcp/http${tail}`;
    return `${kind}-${chainName('', key).slice(0, 8)}-${key}`;
  };
  const epName = (s: LabService, ip: string) => name('endpoint', s, `__${ip.replace(/:/g, '.')}/${s.targetPort}`);
  const to = (ip: string, port: number) => (f === 4 ? `${ip}:${port}` : `[${ip}]:${port}`);
  const out = [
    `add table ${T}`,
    `delete table ${T}`,
    `add table ${T} { comment "rules for kube-proxy"; }`,
    `add chain ${T} mark-for-masquerade`,
    `add rule ${T} mark-for-masquerade meta mark set meta mark | 0x4000`,
    `add chain ${T} masquerading`,
    `add rule ${T} masquerading meta mark & 0x4000 == 0 return`,
    `add rule ${T} masquerading meta mark set meta mark ^ 0x4000`,
    `add rule ${T} masquerading masquerade fully-random`,
    `add set ${T} nodeport-ips { type ${addr}; comment "IPs that accept NodePort traffic"; elements = { ${node.nodeIP} }; }`,
    `add map ${T} service-ips { type ${addr} . inet_proto . inet_service : verdict; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"; }`,
    `add map ${T} service-nodeports { type inet_proto . inet_service : verdict; comment "NodePort traffic"; }`,
    `add map ${T} no-endpoint-services { type ${addr} . inet_proto . inet_service : verdict; comment "vmap to drop or reject packets to services with no endpoints"; }`,
    `add chain ${T} services`,
    `add rule ${T} services ${fam} daddr . meta l4proto . th dport vmap @service-ips`,
    `add rule ${T} services ${fam} daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports`,
    `add chain ${T} service-endpoints-check`,
    `add rule ${T} service-endpoints-check ${fam} daddr . meta l4proto . th dport vmap @no-endpoint-services`,
    `add chain ${T} filter-forward { type filter hook forward priority -110; policy accept; }`,
    `add rule ${T} filter-forward ct state new jump service-endpoints-check`,
    `add chain ${T} nat-prerouting { type nat hook prerouting priority -100; policy accept; }`,
    `add rule ${T} nat-prerouting jump services`,
    `add chain ${T} nat-output { type nat hook output priority -100; policy accept; }`,
    `add rule ${T} nat-output jump services`,
    `add chain ${T} nat-postrouting { type nat hook postrouting priority 100; policy accept; }`,
    `add rule ${T} nat-postrouting jump masquerading`,
  ];
  for (const s of services) {
    const backend = s.backend.ips[k]!;
    const cip = s.clusterIPs[k]!;
    const svc = name('service', s);
    const ep = epName(s, backend);
    out.push(
      `add chain ${T} ${ep}`,
      // The backend calling its own Service (hairpin): masquerade, or it would answer itself directly.
      `add rule ${T} ${ep} ${fam} saddr ${backend} jump mark-for-masquerade`,
      `add rule ${T} ${ep} meta l4proto tcp dnat to ${to(backend, s.targetPort)}`,
      `add chain ${T} ${svc}`,
      // From outside the pod network: masquerade, so the reply comes back through this node.
      `add rule ${T} ${svc} ${fam} daddr ${cip} tcp dport ${s.port} ${fam} saddr != ${clusterCIDR} jump mark-for-masquerade`,
      `add rule ${T} ${svc} numgen random mod 1 vmap { 0 : goto ${ep} }`,
      `add element ${T} service-ips { ${cip} . tcp . ${s.port} : goto ${svc} }`,
    );
    if (!s.nodePort) continue;
    const ext = name('external', s);
    if (s.externalTrafficPolicy === 'Local') {
      // Local: only where the backend runs, straight to the local endpoint and without masquerade.
      if (node.name !== s.backend.node.name) continue;
      out.push(`add chain ${T} ${ext}`, `add rule ${T} ${ext} numgen random mod 1 vmap { 0 : goto ${ep} }`);
    } else {
      out.push(`add chain ${T} ${ext}`, `add rule ${T} ${ext} jump mark-for-masquerade`, `add rule ${T} ${ext} goto ${svc}`);
    }
    out.push(`add element ${T} service-nodeports { tcp . ${s.nodePort} : goto ${ext} }`);
  }
  return out;
}

/**
 * The filter table kube-proxy (iptables mode) writes, for one family: its jumps from FORWARD (prepended,
 * as kube-proxy ensures them: KUBE-PROXY-FIREWALL, KUBE-FORWARD, KUBE-SERVICES, in that order), the drop of
 * conntrack-INVALID packets and the accept of marked and established traffic in KUBE-FORWARD, and a reject
 * for each Service without endpoints in KUBE-SERVICES. For proving podwire's FORWARD rules come after
 * these (iptables-restore --noflush input; pure).
 */
export function kubeProxyFilterRules(noEndpoints: readonly { ip: string; port: number; name: string }[], f: Family = 4): string[] {
  const reject = f === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable';
  const host = f === 4 ? 32 : 128;
  return [
    '*filter',
    ':KUBE-PROXY-FIREWALL - [0:0]',
    ':KUBE-FORWARD - [0:0]',
    ':KUBE-SERVICES - [0:0]',
    '-I FORWARD 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-I FORWARD 1 -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    '-I FORWARD 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ...noEndpoints.map(
      (s) =>
        `-A KUBE-SERVICES -d ${s.ip}/${host} -p tcp -m comment --comment "${s.name} has no endpoints" -m tcp --dport ${s.port} ` +
        `-j REJECT --reject-with ${reject}`,
    ),
    'COMMIT',
    '',
  ];
}

/** A web server in a pod (busybox httpd), saying which pod answered; it ends with the pod's namespace. */
export function serve(p: LabPod, port = TARGET_PORT): ChildProcess {
  return serveIn(p.ns, join(p.node.dir, `www-${p.name}`), `hello from ${p.name} on ${p.node.name}`, port);
}

/**
 * busybox httpd in a namespace: index.html says who answers, /cgi-bin/whoami which client address it saw
 * (REMOTE_ADDR): what proves masquerade, or its absence, from the receiving side.
 */
function serveIn(ns: string, www: string, hello: string, port: number): ChildProcess {
  mkdirSync(join(www, 'cgi-bin'), { recursive: true });
  writeFileSync(join(www, 'index.html'), `${hello}\n`);
  writeFileSync(join(www, 'cgi-bin', 'whoami'), '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nclient %s\\n" "$REMOTE_ADDR"\n', {
    mode: 0o755,
  });
  const proc = spawn('ip', ['netns', 'exec', ns, 'busybox', 'httpd', '-f', '-p', String(port), '-h', www], {
    stdio: 'ignore',
    detached: true,
  });
  proc.unref();
  return proc;
}

export interface ServiceLab {
  services: LabService[];
  client: LabPod;
}

/**
 * Backends "web" on the first and the last node, a client pod on the first; four Services: one per
 * backend (same node / other node from the client's view), a NodePort to the last node's backend, and one
 * more with externalTrafficPolicy Local. The outside host serves too (what it sees of a pod's traffic).
 */
export async function addServices(lab: Lab): Promise<ServiceLab> {
  const first = lab.nodes[0]!;
  const last = lab.nodes[lab.nodes.length - 1]!;
  const webFirst = await lab.addPod(first, 'web');
  const hostPort = { portMappings: [{ hostPort: HOST_PORT, containerPort: TARGET_PORT, protocol: 'tcp' }] };
  const webLast = last === first ? webFirst : await lab.addPod(last, 'web', hostPort);
  const client = await lab.addPod(first, 'client');
  const ips = (i: number) => lab.families.map((f) => PLANS[f].clusterIP(i));
  const svc = (name: string, i: number, backend: LabPod, nodePort?: number): LabService => ({
    name,
    clusterIP: ips(i)[0]!,
    clusterIPs: ips(i),
    port: 80,
    targetPort: TARGET_PORT,
    ...(nodePort ? { nodePort } : {}),
    backend,
  });
  const services: LabService[] = [
    svc('web-same-node', 0, webFirst),
    svc('web-other-node', 1, webLast),
    svc('web-nodeport', 2, webLast, 30080),
    { ...svc('web-local', 3, webLast, LOCAL_NODE_PORT), externalTrafficPolicy: 'Local' },
  ];
  for (const p of new Set([webFirst, webLast])) serve(p);
  // The outside host answers too: what a pod's traffic to the world looks like when it arrives.
  serveIn(lab.outside, join(first.dir, 'www-outside'), 'hello from outside', OUTSIDE_PORT);
  await installKubeProxy(lab, services);
  await new Promise((r) => setTimeout(r, 300)); // httpd listening
  return { services, client };
}

/** kube-proxy's nat rules for these Services on every node, in every family (again when an endpoint changes). */
async function installKubeProxy(lab: Lab, services: readonly LabService[], stale: (k: number) => string[] = () => []): Promise<void> {
  for (const [k, f] of lab.families.entries()) {
    if (lab.proxy === 'nftables') {
      for (const n of lab.nodes) {
        const script = kubeProxyNftRules(services, f, k, { name: n.name, nodeIP: n.nets[k]!.nodeIP }).join('\n') + '\n';
        const r = await run('ip', ['netns', 'exec', n.ns, 'nft', '-f', '-'], { input: script });
        if (r.code !== 0) throw new Error(`kube-proxy rules (nftables) on ${n.name}: ${r.stderr.trim()}`);
      }
      continue;
    }
    const tool = f === 4 ? 'iptables-restore' : 'ip6tables-restore';
    for (const n of lab.nodes) {
      const rules = kubeProxyRules(services, f, k, n.name, stale(k)).join('\n');
      const r = await run('ip', ['netns', 'exec', n.ns, tool, '--noflush', '--wait'], { input: rules });
      if (r.code !== 0) throw new Error(`kube-proxy rules (${tool}) on ${n.name}: ${r.stderr.trim()}`);
    }
  }
}

/**
 * "Pod IPs are ephemeral; clients use the Service": the other node's backend is deleted and started again
 * (CNI DEL, then ADD, as when its Deployment replaces it), gets another Pod IP, kube-proxy's rules follow
 * the new endpoint, and the Cluster IP and the nodePort answer as before — from the new pod.
 */
export async function proveEphemeral(lab: Lab, s: ServiceLab): Promise<Check[]> {
  const old = s.services[1]!.backend;
  if (old.node === s.client.node) return [];
  await lab.delPod(old);
  const fresh = await lab.addPod(old.node, old.name, old.runtimeConfig);
  serve(fresh);
  const moved = s.services.filter((x) => x.backend === old);
  for (const x of moved) x.backend = fresh;
  await installKubeProxy(lab, s.services, (k) => moved.map((x) => sepChain(x, old.ips[k]!)));
  await new Promise((r) => setTimeout(r, 300)); // httpd listening
  const checks: Check[] = [];
  const [other, np] = [s.services[1]!, s.services[2]!];
  for (const [k, f] of lab.families.entries()) {
    const was = old.ips[k]!;
    const now = fresh.ips[k]!;
    const push = (group: ProofId, from: string, to: string, ok: boolean) =>
      checks.push({ proof: group, family: f, from, to, expect: true, ok });
    push('restartedNewPodIP', `${was}`, `${now}`, now !== was);
    const hello = `hello from ${fresh.name} on ${fresh.node.name}`;
    const client = `${s.client.name}@${s.client.node.name}`;
    push(
      'restartedClusterIP',
      client,
      other.clusterIPs[k]!,
      (await httpGet(s.client.ns, other.clusterIPs[k]!, other.port)).includes(hello),
    );
    const node = lab.nodes[0]!.nets[k]!.nodeIP;
    push('restartedNodePort', 'outside', `${node}:${np.nodePort}`, (await httpGet(lab.outside, node, np.nodePort!)).includes(hello));
  }
  return checks;
}

/** The Service proofs, each one HTTP request answered by the expected backend, in every family of the lab. */
export async function proveServices(lab: Lab, s: ServiceLab): Promise<Check[]> {
  const checks: Check[] = [];
  for (const [k, f] of lab.families.entries()) checks.push(...(await proveServicesIn(lab, s, f, k)));
  return checks;
}

async function proveServicesIn(lab: Lab, s: ServiceLab, f: Family, k: number): Promise<Check[]> {
  const checks: Check[] = [];
  const get = async (group: ProofId, fromNs: string, from: string, host: string, port: number, backend: LabPod) => {
    const body = await httpGet(fromNs, host, port);
    checks.push({
      proof: group,
      family: f,
      from,
      to: `${f === 6 ? `[${host}]` : host}:${port}`,
      expect: true,
      ok: body.includes(`hello from ${backend.name} on ${backend.node.name}`),
    });
  };
  const [same, other, np, local] = s.services as [LabService, LabService, LabService, LabService];
  const client = `${s.client.name}@${s.client.node.name}`;
  await get('serviceSameNode', s.client.ns, client, same.clusterIPs[k]!, same.port, same.backend);
  await get('serviceOtherNode', s.client.ns, client, other.clusterIPs[k]!, other.port, other.backend);
  await get(
    'serviceHairpin',
    same.backend.ns,
    `${same.backend.name}@${same.backend.node.name}`,
    same.clusterIPs[k]!,
    same.port,
    same.backend,
  );
  for (const n of lab.nodes) await get('nodePortFromOutside', lab.outside, 'outside', n.nets[k]!.nodeIP, np.nodePort!, np.backend);
  await proveClaims(lab, s, f, k, local, np, checks);
  if (other.backend.node !== s.client.node) {
    const host = other.backend.node.nets[k]!.nodeIP;
    await get('hostPortFromOutside', lab.outside, 'outside', host, HOST_PORT, other.backend);
    await get('hostPortFromNode', s.client.node.ns, s.client.node.name, host, HOST_PORT, other.backend);
  }
  return checks;
}

/** The client address a server saw ("client 10.244.1.4" from /cgi-bin/whoami), as podwire writes addresses. */
function sawClient(body: string): string | undefined {
  const m = /client \[?([0-9a-fA-F:.]+?)\]?(?::\d+)?\s*$/m.exec(body);
  const ip = m ? parseIP(m[1]!.replace(/^::ffff:(?=\d+\.)/, '')) : undefined;
  return ip && formatIP(ip);
}

/**
 * What the articles learners read claim, each shown: externalTrafficPolicy Local (only the backend's node
 * answers the nodePort, and the backend sees the client's own address) beside Cluster (any node answers,
 * the backend sees a node's address); a Cluster IP cannot be pinged; a pod's traffic to the outside world
 * arrives from its Node IP (masquerade).
 */
async function proveClaims(
  lab: Lab,
  s: ServiceLab,
  f: Family,
  k: number,
  local: LabService,
  np: LabService,
  checks: Check[],
): Promise<void> {
  const outside = PLANS[f].outside;
  const claim = (group: ProofId, from: string, to: string, expect: boolean, ok: boolean) =>
    checks.push({ proof: group, family: f, from, to, expect, ok });
  const at = (ip: string, port: number) => (f === 6 ? `[${ip}]:${port}` : `${ip}:${port}`);
  const home = local.backend.node;
  for (const n of lab.nodes) {
    const body = await httpGet(lab.outside, n.nets[k]!.nodeIP, LOCAL_NODE_PORT, '/cgi-bin/whoami');
    if (n === home) {
      claim('localNodePortSeesClient', 'outside', at(n.nets[k]!.nodeIP, LOCAL_NODE_PORT), true, sawClient(body) === outside);
    } else {
      claim('localNodePortOtherNodeSilent', 'outside', at(n.nets[k]!.nodeIP, LOCAL_NODE_PORT), false, body !== '');
    }
  }
  const away = lab.nodes.find((n) => n !== np.backend.node) ?? lab.nodes[0]!;
  const seen = sawClient(await httpGet(lab.outside, away.nets[k]!.nodeIP, np.nodePort!, '/cgi-bin/whoami'));
  // Masqueraded by the node it entered: the backend sees that node's address (underlay or VTEP), not the client's.
  claim('clusterNodePortSeesNode', 'outside', at(away.nets[k]!.nodeIP, np.nodePort!), true, !!seen && seen !== outside);
  const ping = await pingAsync(s.client.ns, s.services[0]!.clusterIPs[k]!);
  claim('clusterIPNoPing', `${s.client.name}@${s.client.node.name}`, s.services[0]!.clusterIPs[k]!, false, ping);
  const out = sawClient(await httpGet(s.client.ns, outside, OUTSIDE_PORT, '/cgi-bin/whoami'));
  claim(
    'podToOutsideSeesNodeIP',
    `${s.client.name}@${s.client.node.name}`,
    at(outside, OUTSIDE_PORT),
    true,
    out === s.client.node.nets[k]!.nodeIP,
  );
}

/** Which port is which, for the table the lab prints. */
export function portRows(s: ServiceLab): string[][] {
  return s.services.map((x) => [
    x.name,
    x.nodePort ? `NodePort${x.externalTrafficPolicy ? ` (${x.externalTrafficPolicy})` : ''}` : 'ClusterIP',
    x.clusterIPs.map((ip) => joinHostPort(ip, x.port)).join(', '),
    `${x.targetPort}`,
    x.nodePort ? `${x.nodePort}` : '-',
    `${x.backend.ips.map((ip) => joinHostPort(ip, x.targetPort)).join(', ')} (${x.backend.name}@${x.backend.node.name})`,
  ]);
}
/** portRows' columns: key (for JSON) and header (for the table). */
/** The ports table's columns: key in --json, message id of its heading (src/i18n). */
export const PORT_COLUMNS = [
  ['service', 'col.service'],
  ['type', 'col.type'],
  ['clusterIP', 'col.clusterIP'],
  ['targetPort', 'col.targetPort'],
  ['nodePort', 'col.nodePort'],
  ['backend', 'col.backendPod'],
] as const;
