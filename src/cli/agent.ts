// `podwire agent`: the node agent following the Kubernetes API (what the DaemonSet runs on every node).
// The Kubernetes client is imported only here: it is big, and the plugin path never needs it.
import { t } from '../i18n/index.js';
import { FIREWALL_SETTINGS, type FirewallSetting } from '../firewall/choose.js';
import { useHostTools } from '../kernel/tools.js';
import { hostname } from 'node:os';
import type { CommandModule } from 'yargs';
import { readFileSync } from 'node:fs';
import { configurePinoLog } from './log.js';
import { detectIptablesBackend, useIptablesBackend } from '../firewall/iptables.js';
import { OFFLOAD_SETTINGS, type OffloadSetting } from '../kernel/ethtool.js';
import { BACKENDS, type Backend } from '../node/cluster.js';
import { DEFAULT_SUBNET_FILE } from '../nodestate/subnet-file.js';
import { DEFAULT_DATA_DIR } from '../ipam/config.js';
import { DiskStore } from '../ipam/disk-store.js';

interface AgentArgs {
  kubeconfig?: string;
  node: string;
  'cluster-cidr': string;
  backend: Backend;
  vni?: number;
  port?: number;
  mtu?: number;
  'subnet-file': string;
  'cni-conf-dir': string;
  resync: number;
  relist: number;
  'podcidr-timeout': number;
  'log-file'?: string;
  'status-addr': string;
  'metrics-addr'?: string;
  'metrics-auth': boolean;
  'checksum-offload': OffloadSetting;
  'conflist-template'?: string;
  iptables: 'auto' | 'legacy' | 'nft' | 'plain';
  firewall: FirewallSetting;
  'host-tools'?: string;
  'network-policy': boolean;
  drops: boolean;
}

/** "HOST:PORT", ":PORT" or "PORT" (all addresses); "" or "off": no status server. */
export function parseAddr(s: string, flag = '--status-addr', anyHost = '0.0.0.0'): { host: string; port: number } | undefined {
  if (s === '' || s === 'off') return undefined;
  const i = s.lastIndexOf(':');
  const host = i < 0 ? anyHost : s.slice(0, i) || anyHost;
  const port = Number(i < 0 ? s : s.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${flag}: "${s}" is not HOST:PORT`);
  return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
}

const say = (m: string) => process.stderr.write(`${m}\n`);

export const agentCommand: CommandModule<object, AgentArgs> = {
  command: 'agent',
  get describe() {
    return t('cli.agent');
  },
  builder: (y) =>
    y
      .option('kubeconfig', {
        type: 'string',
        describe: 'kubeconfig file (default: in-cluster service account, $KUBECONFIG, ~/.kube/config)',
      })
      .option('node', {
        type: 'string',
        default: process.env.NODE_NAME || hostname(),
        describe: "this node's name ($NODE_NAME in the DaemonSet)",
      })
      .option('cluster-cidr', {
        type: 'string',
        default: '10.244.0.0/16',
        describe: 'the cluster network: one, or IPv4,IPv6 (kubeadm --pod-network-cidr)',
      })
      .option('backend', { choices: BACKENDS, default: 'vxlan' as Backend, describe: 'how pods reach other nodes' })
      .option('vni', { type: 'number', describe: 'VXLAN network identifier (default 1)' })
      .option('port', { type: 'number', describe: 'VXLAN UDP port (default 8472)' })
      .option('checksum-offload', {
        choices: OFFLOAD_SETTINGS,
        default: 'auto' as OffloadSetting,
        describe: 'TX checksum offload on the VXLAN device: auto (on where the kernel has the fix, 5.7+), on, off',
      })
      .option('firewall', {
        choices: FIREWALL_SETTINGS,
        default: 'auto' as FirewallSetting,
        describe:
          "where the node's and pods' rules go: auto (nftables where nft is installed and iptables' FORWARD policy is not DROP), nftables, iptables",
      })
      .option('network-policy', {
        type: 'boolean',
        default: true,
        describe: 'enforce NetworkPolicies (nftables table inet podwire-policy); --network-policy=false removes it',
      })
      .option('drops', {
        type: 'boolean',
        default: true,
        describe:
          'read every packet podwire drops (netlink log group, with ulogd2): logged, counted (podwire_dropped_packets_total), served on --status-addr /drops',
      })
      .option('host-tools', {
        type: 'string',
        describe:
          "the host's /usr/sbin as mounted in the agent's container: firewall auto then also needs the tool on the host, where the plugin runs",
      })
      .option('mtu', { type: 'number', describe: 'pod MTU (default: underlay MTU, - 50 with VXLAN)' })
      .option('subnet-file', { type: 'string', default: DEFAULT_SUBNET_FILE, describe: 'node subnet file the plugin reads' })
      .option('cni-conf-dir', {
        type: 'string',
        default: '/etc/cni/net.d',
        describe: 'where to write 10-podwire.conflist ("none": not at all; `podwire install --agent-conflist` wrote it)',
      })
      .option('resync', { type: 'number', default: 30, describe: 'seconds between syncs when nothing happens' })
      .option('relist', {
        type: 'number',
        default: 10,
        describe: 'minutes between full lists of every object the agent follows, each reconciled into the kernel (0: never)',
      })
      .option('podcidr-timeout', { type: 'number', default: 300, describe: "seconds to wait for this node's podCIDR" })
      .option('log-file', { type: 'string', describe: 'also log (JSON lines) to this file' })
      .option('status-addr', {
        type: 'string',
        default: ':9471',
        describe: 'serve /healthz, /readyz and /metrics (Prometheus) on HOST:PORT ("off": not at all)',
      })
      .option('metrics-addr', {
        type: 'string',
        describe: 'also serve /metrics alone on HOST:PORT (for Prometheus, while --status-addr stays on 127.0.0.1)',
      })
      .option('metrics-auth', {
        type: 'boolean',
        default: false,
        describe:
          'on --metrics-addr, serve /metrics only to a bearer token the API server allows to get /metrics (TokenReview, SubjectAccessReview)',
      })
      .option('conflist-template', {
        type: 'string',
        describe: 'the network config list to install, with a podwire plugin (its subnetFile is set); default: podwire alone',
      })
      .option('iptables', {
        choices: ['auto', 'legacy', 'nft', 'plain'] as const,
        default: 'auto' as const,
        describe: "which iptables backend: auto picks the host's (as kube-proxy's image does); plain runs `iptables` as it is",
      })
      .strict(),
  handler: async (a) => {
    if (a['log-file']) configurePinoLog(a['log-file'], 'info');
    const addr = parseAddr(a['status-addr']);
    const template = a['conflist-template'] === undefined ? undefined : readFileSync(a['conflist-template'], 'utf8');
    useHostTools(a['host-tools']);
    if (a.iptables !== 'plain') {
      const found = a.iptables === 'auto' ? await detectIptablesBackend() : { backend: a.iptables, why: 'as --iptables says' };
      useIptablesBackend(found.backend);
      say(`agent ${a.node}: iptables ${found.backend} (${found.why})`);
    }
    const { AgentStatus, serveStatus } = await import('../node/agent-status.js');
    const status = new AgentStatus(Math.max(3 * a.resync, 60) * 1000);
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    if (a.kubeconfig) kc.loadFromFile(a.kubeconfig);
    else kc.loadFromDefault();
    const server = addr && (await serveStatus(status, addr.host, addr.port));
    if (server) say(`agent ${a.node}: /healthz, /readyz and /metrics on ${addr!.host}:${server.port}`);
    const maddr = a['metrics-addr'] === undefined ? undefined : parseAddr(a['metrics-addr'], '--metrics-addr');
    if (a['metrics-auth'] && !maddr) throw new Error('--metrics-auth: it guards --metrics-addr, which is not set');
    if (maddr) {
      const [{ apiAuthorizer }, { ApiClient }] = await Promise.all([import('../node/metrics-auth.js'), import('../node/api.js')]);
      const authorize = a['metrics-auth'] ? apiAuthorizer(new ApiClient(kc)) : undefined;
      const m = await serveStatus(status, maddr.host, maddr.port, { metricsOnly: true, ...(authorize ? { authorize } : {}) });
      say(`agent ${a.node}: /metrics${authorize ? ', for a token allowed to get it,' : ''} on ${maddr.host}:${m.port}`);
    }
    const { agentConflist, runAgent } = await import('../node/kube-agent.js');
    const stop = new AbortController();
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
    // The plugin records what it reclaims in its IPAM store (see ipam/disk-store.ts); the metric reads it.
    const reclaimCount = (): number => {
      try {
        const list = JSON.parse(agentConflist(a['subnet-file'], template));
        const ipam = list.plugins.find((p: { type?: string }) => p.type === 'podwire').ipam;
        return DiskStore.forNetwork(ipam.dataDir ?? DEFAULT_DATA_DIR, list.name).reclaims().count;
      } catch {
        return 0;
      }
    };
    const vxlan = { vni: a.vni, port: a.port, checksumOffload: a['checksum-offload'] };
    try {
      await runAgent({
        kc,
        node: a.node,
        settings: {
          clusterCIDRs: a['cluster-cidr'].split(',').map((x) => x.trim()),
          backend: a.backend,
          vxlan,
          firewall: a.firewall,
          ...(a.mtu ? { mtu: a.mtu } : {}),
        },
        subnetFile: a['subnet-file'],
        networkPolicy: a['network-policy'],
        drops: a.drops,
        confDir: a['cni-conf-dir'],
        resync: a.resync,
        relistMs: a.relist * 60_000,
        podCIDRTimeout: a['podcidr-timeout'],
        signal: stop.signal,
        say,
        status,
        ...(template === undefined ? {} : { conflistTemplate: template }),
        onSync: (r) => {
          status.reclaims(reclaimCount());
          if (r.changes || r.failures.length)
            say(
              `peers ${a.node}: ${r.peers.length} peer(s), ${r.changes} change(s), ${r.failures.length} failure(s), ${r.ms.toFixed(1)} ms`,
            );
          for (const f of r.failures) say(`failed: ${f.command}: ${f.error}`);
        },
      });
    } finally {
      server?.server.close();
    }
  },
};
