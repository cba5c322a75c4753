// deploy/podwire.yaml: parsed as Kubernetes would take it, with the fields a working install depends on,
// and every flag it passes to podwire checked against the binary's own --help.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { describe, expect, it, vi } from 'vitest';
import { cli } from '../../src/cli/index.js';
import { agentConflist } from '../../src/node/kube-agent.js';
import { ROOT } from '../helpers/netns.js';

type Obj = Record<string, any>;
const docs = loadAll(readFileSync(join(ROOT, 'deploy', 'podwire.yaml'), 'utf8')) as Obj[];
const byKind = (kind: string): Obj => {
  const d = docs.find((x) => x.kind === kind);
  if (!d) throw new Error(`no ${kind} in deploy/podwire.yaml`);
  return d;
};
/** A command's --help, from the CLI run in-process (what the binary prints). */
async function help(cmd: string): Promise<string> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(console, 'log').mockImplementation((...a) => void (out += a.join(' ') + '\n'));
  try {
    await cli([cmd, '--help']);
  } finally {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  }
  return out;
}

describe('deploy/podwire.yaml', () => {
  it('holds a ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap and DaemonSet, each with apiVersion and name', () => {
    expect(docs.map((d) => d.kind)).toEqual(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet']);
    for (const d of docs) {
      expect(d.apiVersion, d.kind).toMatch(/^(v1|rbac\.authorization\.k8s\.io\/v1|apps\/v1)$/);
      expect(d.metadata?.name, d.kind).toBe('podwire');
    }
  });

  it('grants nodes get/list/watch, nodes/status patch, events create, list/watch of pods, namespaces and networkpolicies, and nothing else', () => {
    const rules = byKind('ClusterRole').rules as Obj[];
    const grants = rules
      .flatMap((r) => r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${r.apiGroups.join()}/${res}:${v}`)))
      .sort();
    expect(grants).toEqual([
      '/events:create',
      '/namespaces:list',
      '/namespaces:watch',
      '/nodes/status:patch',
      '/nodes:get',
      '/nodes:list',
      '/nodes:watch',
      '/pods:list',
      '/pods:watch',
      'networking.k8s.io/networkpolicies:list',
      'networking.k8s.io/networkpolicies:watch',
    ]);
    const b = byKind('ClusterRoleBinding');
    const sa = byKind('ServiceAccount');
    expect(b.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'podwire' });
    expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
  });

  it('runs on every node in the host network with NET_ADMIN/NET_RAW, as its service account', () => {
    const ds = byKind('DaemonSet');
    const pod = ds.spec.template.spec;
    expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels);
    expect(pod.hostNetwork).toBe(true);
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
    expect(pod.serviceAccountName).toBe(byKind('ServiceAccount').metadata.name);
    expect(ds.metadata.namespace).toBe(byKind('ServiceAccount').metadata.namespace);
    const agent = pod.containers.find((c: Obj) => c.name === 'agent');
    expect(agent.securityContext.capabilities.add).toEqual(expect.arrayContaining(['NET_ADMIN', 'NET_RAW']));
    expect(agent.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
  });

  it('installs the binary into the host /opt/cni/bin and the config into the host /etc/cni/net.d', () => {
    const pod = byKind('DaemonSet').spec.template.spec;
    const hostPath = (c: Obj, mountPath: string): string | undefined => {
      const m = c.volumeMounts.find((v: Obj) => v.mountPath === mountPath);
      return pod.volumes.find((v: Obj) => v.name === m?.name)?.hostPath?.path;
    };
    const install = pod.initContainers.find((c: Obj) => c.name === 'install-cni');
    const binDir = install.command[install.command.indexOf('--bin-dir') + 1];
    expect(install.command.slice(0, 2)).toEqual(['podwire', 'install']);
    expect(hostPath(install, binDir)).toBe('/opt/cni/bin');
    const agent = pod.containers.find((c: Obj) => c.name === 'agent');
    const arg = (k: string) => (agent.args as string[]).find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
    expect(hostPath(agent, arg('cni-conf-dir')!)).toBe('/etc/cni/net.d');
    // The conflist names the subnet file by path, and the plugin reads it on the host: same path both sides.
    const subnetDir = arg('subnet-file')!.replace(/\/[^/]+$/, '');
    expect(hostPath(agent, subnetDir)).toBe(subnetDir);
    expect(arg('cluster-cidr')).toBe('10.244.0.0/16');
  });

  it('passes only flags podwire knows', async () => {
    const pod = byKind('DaemonSet').spec.template.spec;
    const agent = pod.containers.find((c: Obj) => c.name === 'agent');
    const install = pod.initContainers.find((c: Obj) => c.name === 'install-cni');
    const flags = (args: string[]) => args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]!);
    const agentHelp = await help('agent');
    for (const f of flags([...agent.command, ...agent.args])) expect(agentHelp, f).toContain(`${f} `);
    const installHelp = await help('install');
    for (const f of flags(install.command)) expect(installHelp, f).toContain(`${f} `);
  });

  const agentOf = () => byKind('DaemonSet').spec.template.spec.containers.find((c: Obj) => c.name === 'agent');
  const argOf = (k: string) => (agentOf().args as string[]).find((a) => a.startsWith(`--${k}=`))?.split('=')[1];

  it('runs on Linux nodes of both architectures the image is built for, with probes on the agent status port, served on the node address', async () => {
    const pod = byKind('DaemonSet').spec.template.spec;
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64', 'arm64'] }] },
    ]);
    // The image takes the binary of its platform, and the build makes one for each of those architectures.
    const containerfile = readFileSync(join(ROOT, 'deploy', 'Containerfile'), 'utf8');
    expect(containerfile).toMatch(/^ARG TARGETARCH$/m);
    expect(containerfile).toMatch(/^COPY dist\/podwire-linux-\$\{TARGETARCH\} \/usr\/local\/bin\/podwire$/m);
    const { ARCHES } = await import('../../scripts/build.mjs');
    expect(Object.keys(ARCHES).sort()).toEqual(['amd64', 'arm64']);
    const agent = agentOf();
    // Bound to the node's own address (kubelet probes a hostNetwork pod there), not to every address.
    expect(argOf('status-addr')).toBe('$(HOST_IP):9471');
    expect(agent.env).toContainEqual({ name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } });
    const port = Number(argOf('status-addr')!.split(':').pop());
    const named = (p: string | number) => (typeof p === 'number' ? p : agent.ports.find((x: Obj) => x.name === p)?.containerPort);
    expect(agent.livenessProbe.httpGet.path).toBe('/healthz');
    expect(agent.readinessProbe.httpGet.path).toBe('/readyz');
    expect(named(agent.livenessProbe.httpGet.port)).toBe(port);
    expect(named(agent.readinessProbe.httpGet.port)).toBe(port);
    // hostNetwork: the declared port is the node's
    expect(agent.ports).toContainEqual(expect.objectContaining({ containerPort: port, hostPort: port }));
    expect(byKind('DaemonSet').spec.template.metadata.annotations['prometheus.io/port']).toBe(String(port));
    // liveness gives the loop longer than its own stuck threshold (3 x resync, at least 60 s) would
    expect(agent.livenessProbe.periodSeconds * agent.livenessProbe.failureThreshold).toBeGreaterThanOrEqual(60);
  });

  it('installs the conflist template from its ConfigMap, and the template is one the agent takes', () => {
    const pod = byKind('DaemonSet').spec.template.spec;
    const file = argOf('conflist-template')!;
    const mount = agentOf().volumeMounts.find((m: Obj) => file.startsWith(m.mountPath + '/'));
    const volume = pod.volumes.find((v: Obj) => v.name === mount.name);
    const cm = byKind('ConfigMap');
    expect(volume.configMap.name).toBe(cm.metadata.name);
    expect(cm.metadata.namespace).toBe(byKind('DaemonSet').metadata.namespace);
    const template = cm.data[file.slice(mount.mountPath.length + 1)];
    const conf = JSON.parse(agentConflist(argOf('subnet-file')!, template));
    expect(conf.plugins[0]).toMatchObject({ type: 'podwire', ipam: { type: 'podwire-ipam', subnetFile: argOf('subnet-file') } });
    expect(conf.plugins[0].capabilities).toEqual({ portMappings: true });
  });

  it("picks the host's iptables backend, and has a memory request and limit but no CPU limit", () => {
    expect(argOf('iptables')).toBe('auto');
    const r = agentOf().resources;
    expect(r.requests.memory).toMatch(/^\d+Mi$/);
    expect(parseInt(r.limits.memory)).toBeGreaterThan(parseInt(r.requests.memory));
    expect(r.limits.cpu).toBeUndefined();
  });
});
