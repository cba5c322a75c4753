// Where kubelet stands: Debian's containerd (1.6) with its CRI plugin, driven over its gRPC socket with
// runtime.v1 calls as kubelet makes them (Status, RunPodSandbox, PodSandboxStatus, StopPodSandbox,
// RemovePodSandbox). containerd runs inside lab node1's network namespace with its root, state, socket,
// runc root and CNI dirs in a temp dir; the pause image is built here and imported into "k8s.io". Its CNI
// conf dir starts empty: `podwire agent` (following the fake API server, inside node1) writes the
// conflist, as the DaemonSet does. node2 is a lab node set up from the cluster file, with one pod.
// Nothing is sent outside the lab's namespaces.
import type { FirewallBackend } from '../../src/firewall/choose.js';
import { PER_POD, firewallText, hostPortTo, iptablesNat, nftTable } from '../helpers/firewall.js';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import subnetFileConflist from '../../cni-conf/podwire-subnetfile.conflist';
import { Lab, type LabNode, type LabPod } from '../../src/lab/lab.js';
import { httpGet, labDown, pingAsync } from '../../src/lab/netns.js';
import { run } from '../../src/runtime/run.js';
import { ApiServerProcess } from '../helpers/apiserver-process.js';
import { type CriClient, criClient } from '../helpers/cri/client.js';
import { kubeNode, kubeconfigYaml } from '../helpers/fake-apiserver.mjs';
import { BIN, REF_PLUGINS, Sandbox, linkNames, nsPath, requireRoot, sh } from '../helpers/netns.js';
import {
  HostTrail,
  busyboxRootfs,
  cleanupContainerd,
  cniCalls,
  containerdConfig,
  inNode,
  ociArchive,
  requireContainerd,
  reserved,
  spawnContainerd,
} from '../helpers/runtimes.js';
import { until } from '../helpers/wait.js';

const PAUSE = 'localhost/podwire-pause:test';
const API_PORT = 6443;
const NET = 'podwire'; // the conflist's name

const box = new Sandbox();
let lab: Lab;
let n1: LabNode;
let n2: LabNode;
let remote: LabPod;
let dir = '';
let containerd: ChildProcess | undefined;
let api: ApiServerProcess | undefined;
let agent: ChildProcess | undefined;
/** The firewall backend of this round: the file runs once with each. */
let firewall: FirewallBackend = 'nftables';
let agentErr = '';
let trail: HostTrail | undefined;
let cri: CriClient;
const servers: ChildProcess[] = [];

const sock = () => join(dir, 'containerd.sock');
const confDir = () => join(dir, 'net.d');
const calls = () => (existsSync(join(dir, 'podwire.log')) ? cniCalls(join(dir, 'podwire.log')) : []);
const held = () => reserved(join(dir, 'ipam'), NET);
const veths = () => linkNames(n1.ns).filter((l) => l.startsWith('veth'));
const networkReady = async () => (await cri.status()).find((c) => c.type === 'NetworkReady')!;
/** The pod's network namespace, as containerd gave it to podwire on ADD. */
const netnsOf = (id: string) => calls().find((c) => c.cmd === 'ADD' && c.containerID === id)!.netns!;

/** A command inside a sandbox's network namespace (the host's mounts, so containerd's netns file is there). */
const inPod = (id: string, cmd: string, args: string[]) => run('nsenter', [`--net=${netnsOf(id)}`, cmd, ...args]);
const podPing = async (id: string, to: string) => (await inPod(id, 'busybox', ['ping', '-c', '1', '-W', '2', to])).code === 0;

/** containerd's CRI plugin as a kubeadm node runs it, with everything under the temp dir. */
function criConfig(): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return containerdConfig(dir, [
    `[${cri}]`,
    `  sandbox_image = "${PAUSE}"`,
    // root here lacks CAP_SYS_RESOURCE: without this runc cannot start the pause container
    '  restrict_oom_score_adj = true',
    // pod netns files under the temp state dir, not /run/netns
    '  netns_mounts_under_state_dir = true',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    `[${cri}.containerd]`,
    '  snapshotter = "native"',
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.runc.options]`,
    `  Root = "${join(dir, 'runc')}"`,
    `[${cri}.cni]`,
    `  bin_dir = "${join(dir, 'bin')}"`,
    `  conf_dir = "${confDir()}"`,
    '  max_conf_num = 1',
  ]);
}

/** Starts containerd in node1 (through nsenter --net: runc needs the host's /sys) and waits for its CRI. */
async function startContainerd(): Promise<void> {
  containerd = spawnContainerd(n1.ns, dir);
  cri?.close();
  cri = criClient(sock(), 20_000);
  await until(
    () =>
      cri.version().then(
        () => true,
        () => false,
      ),
    30_000,
    `containerd's CRI (log: ${join(dir, 'containerd.log')})`,
    200,
  );
}

function startAgent(): void {
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(`http://127.0.0.1:${API_PORT}`));
  // The ConfigMap's template with this test's log and IPAM dirs, so nothing is written to the host's.
  const template = structuredClone(subnetFileConflist) as any;
  Object.assign(template.plugins[0], { logFile: join(dir, 'podwire.log'), ipam: { type: 'podwire-ipam', dataDir: join(dir, 'ipam') } });
  writeFileSync(join(dir, 'template.conflist'), JSON.stringify(template));
  const args = [
    '--node',
    'node1',
    '--kubeconfig',
    kubeconfig,
    '--subnet-file',
    n1.subnetFile,
    '--cni-conf-dir',
    confDir(),
    '--firewall',
    firewall,
  ];
  agent = spawn(
    'nsenter',
    [`--net=${nsPath(n1.ns)}`, BIN, 'agent', ...args, '--conflist-template', join(dir, 'template.conflist'), '--status-addr', 'off'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  agent.stderr!.on('data', (d) => (agentErr += d));
}

/** A web server on `port` inside a sandbox's network namespace: the pod's containerPort. */
function serveInPod(id: string, port: number): void {
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'index.html'), `hello from sandbox ${id.slice(0, 12)}\n`);
  servers.push(spawn('nsenter', [`--net=${netnsOf(id)}`, 'busybox', 'httpd', '-f', '-p', String(port), '-h', www], { stdio: 'ignore' }));
}

const sandbox = (name: string, namespace: string, more: object = {}) => ({
  metadata: { name, namespace, uid: `uid-${namespace}-${name}`, attempt: 0 },
  hostname: name,
  log_directory: join(dir, 'pods', `${namespace}_${name}`),
  labels: { app: name },
  ...more,
});

describe.each<FirewallBackend>(['nftables', 'iptables'])('firewall backend %s', (backend) => {
  beforeAll(() => {
    firewall = backend;
  });

  beforeAll(async () => {
    requireRoot();
    requireContainerd();
    labDown();
    lab = Lab.create(BIN, 'vxlan', 2, 'ipv4', firewall);
    [n1, n2] = lab.nodes as [LabNode, LabNode];
    dir = box.dir();
    mkdirSync(confDir());
    // The CNI bin dir as the DaemonSet's init container leaves it, plus the loopback plugin containerd
    // uses for each pod's lo.
    sh(BIN, ['install', '--bin-dir', join(dir, 'bin')]);
    symlinkSync(join(REF_PLUGINS, 'loopback'), join(dir, 'bin', 'loopback'));
    writeFileSync(join(dir, 'config.toml'), criConfig());
    await startContainerd();
    // The pause image: busybox sleeping forever, built here as an OCI archive.
    const archive = ociArchive(busyboxRootfs(join(dir, 'rootfs')), join(dir, 'pause.tar'), PAUSE, ['sleep', 'infinity']);
    inNode(n1.ns, 'ctr', ['--address', sock(), '-n', 'k8s.io', 'images', 'import', '--snapshotter', 'native', archive]);

    // node2: set up from the cluster file, with a pod to reach; node1 is the agent's to set up.
    await lab.nodeUp(n2);
    await lab.sync(n2);
    remote = await lab.addPod(n2, 'pod1');
    // From here on, whatever containerd leaves on the host outside the temp dir is noticed.
    trail = new HostTrail([new RegExp(`^/var/lib/cni/results/${NET}-`)]);
    api = await ApiServerProcess.start(n1.ns, API_PORT, '127.0.0.1');
    await api.send({ op: 'add', node: kubeNode('node1', n1.nodeIP, n1.podCIDR) });
    await api.send({ op: 'add', node: kubeNode('node2', n2.nodeIP, n2.podCIDR) });
  }, 120_000);

  afterAll(async () => {
    if (cri) {
      for (const s of await cri.listPodSandbox().catch(() => [])) {
        await cri.stopPodSandbox(s.id).catch(() => undefined);
        await cri.removePodSandbox(s.id).catch(() => undefined);
      }
      cri.close();
    }
    for (const s of servers) s.kill();
    agent?.kill();
    api?.kill();
    containerd?.kill('SIGKILL');
    if (dir) cleanupContainerd(dir);
    labDown();
    box.cleanup();
    trail?.cleanup();
  }, 120_000);

  describe("containerd's CRI, driven as kubelet drives it", () => {
    it('reports NetworkReady=false while the CNI conf dir is empty, true once podwire agent wrote the conflist', async () => {
      const before = await networkReady();
      expect(before.status).toBe(false);
      expect(before.reason).toBe('NetworkPluginNotReady');
      expect(before.message).toMatch(/cni (config|plugin) not initialized|no network config/i);

      startAgent();
      await until(() => existsSync(join(confDir(), '10-podwire.conflist')), 30_000, `the agent's conflist (${agentErr})`);
      await until(async () => (await networkReady()).status, 30_000, 'NetworkReady=true', 200);
      const conf = JSON.parse(readFileSync(join(confDir(), '10-podwire.conflist'), 'utf8'));
      expect(conf.plugins[0]).toMatchObject({ type: 'podwire', ipam: { type: 'podwire-ipam', subnetFile: n1.subnetFile } });
      // node1's agent learnt node2 from the API: node1 routes to node2's slice
      await until(() => sh('ip', ['-n', n1.ns, 'route', 'show', n2.podCIDR]).trim() !== '', 15_000, 'the route to node2');
    });

    it('RunPodSandbox: distinct Pod IPs from the slice, in PodSandboxStatus; pods reach each other and a pod on node2', async () => {
      const a = await cri.runPodSandbox(sandbox('web', 'default'));
      const b = await cri.runPodSandbox(sandbox('client', 'team-b'));
      const [sa, sb] = [await cri.podSandboxStatus(a), await cri.podSandboxStatus(b)];
      for (const s of [sa, sb]) {
        expect(s.state).toBe('SANDBOX_READY');
        expect(s.network?.ip).toMatch(/^10\.244\.1\.\d+$/);
      }
      expect(sa.network!.ip).not.toBe(sb.network!.ip);
      expect(held().sort()).toEqual([sa.network!.ip, sb.network!.ip].sort());

      // What kubelet's runtime sends: the sandbox ID as the container ID, the pod in CNI_ARGS; podwire's
      // log line names the pod so an operator can grep for it.
      const add = calls().find((c) => c.cmd === 'ADD' && c.containerID === a) as any;
      expect(add).toBeDefined();
      const args = Object.fromEntries((add.args as string).split(';').map((kv: string) => kv.split('=')));
      expect(args).toMatchObject({ IgnoreUnknown: '1', K8S_POD_NAME: 'web', K8S_POD_NAMESPACE: 'default', K8S_POD_INFRA_CONTAINER_ID: a });
      expect(add).toMatchObject({ pod: 'web', podNamespace: 'default', net: NET, ifname: 'eth0', ips: [`${sa.network!.ip}/24`] });
      expect(add.netns).toMatch(new RegExp(`^${dir}/state/`)); // netns_mounts_under_state_dir

      expect(await podPing(a, sb.network!.ip)).toBe(true);
      expect(await podPing(b, sa.network!.ip)).toBe(true);
      expect(await podPing(a, remote.ip)).toBe(true); // across the VXLAN overlay
      expect(await pingAsync(remote.ns, sa.network!.ip)).toBe(true);
    });

    it('a sandbox with port_mappings publishes its hostPort; StopPodSandbox twice then RemovePodSandbox leaves nothing', async () => {
      const before = { held: held(), veths: veths() };
      const id = await cri.runPodSandbox(
        sandbox('hostport', 'default', { port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: 8081 }] }),
      );
      const ip = (await cri.podSandboxStatus(id)).network!.ip;
      serveInPod(id, 8080);
      // from a host outside the cluster, on the nodes' network, to node1's Node IP
      let page = '';
      await until(async () => (page = await httpGet(lab.outside, n1.nodeIP, 8081)) !== '', 10_000, 'the hostPort to answer');
      expect(page).toContain(`hello from sandbox ${id.slice(0, 12)}`);
      const rules = () => firewallText(n1.ns);
      expect(hostPortTo(rules(), 8081, ip, 8080)).toBe(true);
      // In this round's backend, and nothing in the other.
      expect(firewall === 'nftables' ? nftTable(n1.ns) : iptablesNat(n1.ns)).toMatch(PER_POD);
      expect(firewall === 'nftables' ? iptablesNat(n1.ns) : nftTable(n1.ns)).not.toMatch(PER_POD);
      const netns = netnsOf(id);
      servers.pop()!.kill();

      await cri.stopPodSandbox(id);
      await cri.stopPodSandbox(id);
      await cri.removePodSandbox(id);
      const mine = calls().filter((c) => c.containerID === id);
      expect(mine.map((c) => `${c.cmd}:${c.outcome}`)).toEqual(['ADD:ok', 'DEL:ok', 'DEL:ok', 'DEL:ok']);
      expect(mine[1]!.netns).toBe(netns); // only the first DEL still has the pod's namespace
      expect(held()).toEqual(before.held);
      expect(veths()).toEqual(before.veths);
      expect(rules()).not.toMatch(PER_POD);
      expect(rules()).not.toContain('8081');
      expect(existsSync(netns)).toBe(false);
      expect(await httpGet(lab.outside, n1.nodeIP, 8081)).toBe('');
    });

    it('containerd killed and restarted: pods keep their addresses; stopping them afterwards releases everything', async () => {
      const pods = await cri.listPodSandbox();
      expect(pods.map((p) => p.metadata.name).sort()).toEqual(['client', 'web']);
      const ips = new Map(await Promise.all(pods.map(async (p) => [p.id, (await cri.podSandboxStatus(p.id)).network!.ip] as const)));
      const adds = calls().filter((c) => c.cmd === 'ADD').length;

      const exited = new Promise((r) => containerd!.once('exit', r));
      containerd!.kill('SIGKILL');
      await exited;
      await startContainerd();

      const after = await cri.listPodSandbox();
      expect(after.map((p) => [p.id, p.state]).sort()).toEqual(pods.map((p) => [p.id, 'SANDBOX_READY']).sort());
      for (const [id, ip] of ips) expect((await cri.podSandboxStatus(id)).network!.ip).toBe(ip);
      expect(calls().filter((c) => c.cmd === 'ADD').length).toBe(adds); // nothing was re-added
      const [a, b] = [...ips.keys()] as [string, string];
      expect(await podPing(a, ips.get(b)!)).toBe(true);
      expect(await podPing(b, remote.ip)).toBe(true);

      for (const id of ips.keys()) {
        await cri.stopPodSandbox(id);
        await cri.removePodSandbox(id);
      }
      expect(await cri.listPodSandbox()).toEqual([]);
      expect(held()).toEqual([]);
      expect(veths()).toEqual([]);
      expect(firewallText(n1.ns)).not.toMatch(PER_POD);
      expect(trail!.added().filter((f) => f.startsWith('/var/lib/cni/results/') || f.startsWith('/run/netns/'))).toEqual([]);
      for (const id of ips.keys()) expect(calls().filter((c) => c.containerID === id && c.outcome !== 'ok')).toEqual([]);
    });
  });
});
