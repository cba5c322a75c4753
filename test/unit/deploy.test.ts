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
  it('holds its ServiceAccount, roles, admission policy, ConfigMap and DaemonSet, each with apiVersion and name', () => {
    expect(docs.map((d) => d.kind)).toEqual([
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
      'ConfigMap',
      'DaemonSet',
    ]);
    for (const d of docs) {
      expect(d.apiVersion, d.kind).toMatch(/^(v1|rbac\.authorization\.k8s\.io\/v1|admissionregistration\.k8s\.io\/v1|apps\/v1)$/);
      expect(d.metadata?.name, d.kind).toMatch(/^podwire(-events|-own-node-status)?$/);
    }
  });

  it('grants nodes get/list/watch, nodes/status patch, list/watch of pods, namespaces and networkpolicies, token and access reviews, and nothing else', () => {
    const rules = byKind('ClusterRole').rules as Obj[];
    const grants = rules
      .flatMap((r) => r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${r.apiGroups.join()}/${res}:${v}`)))
      .sort();
    expect(grants).toEqual([
      '/namespaces:list',
      '/namespaces:watch',
      '/nodes/status:patch',
      '/nodes:get',
      '/nodes:list',
      '/nodes:watch',
      '/pods:list',
      '/pods:watch',
      'authentication.k8s.io/tokenreviews:create',
      'authorization.k8s.io/subjectaccessreviews:create',
      'networking.k8s.io/networkpolicies:list',
      'networking.k8s.io/networkpolicies:watch',
    ]);
    const b = byKind('ClusterRoleBinding');
    const sa = byKind('ServiceAccount');
    expect(b.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'podwire' });
    expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
  });

  it('lets it create Events in default only, where its Node events go', () => {
    const role = byKind('Role');
    const rb = byKind('RoleBinding');
    const sa = byKind('ServiceAccount');
    expect(role.metadata.namespace).toBe('default');
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['events'], verbs: ['create'] }]);
    expect(rb.metadata.namespace).toBe('default');
    expect(rb.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
  });

  describe('its admission policy, evaluated as the API server would (CEL)', () => {
    const vap = () => byKind('ValidatingAdmissionPolicy');
    const node = (name: string, o: { labels?: Obj; annotations?: Obj; conditions?: Obj[]; addresses?: Obj[] } = {}): Obj => ({
      metadata: {
        name,
        labels: o.labels ?? { 'kubernetes.io/hostname': name },
        annotations: o.annotations ?? { 'kubeadm.alpha.kubernetes.io/cri-socket': 'x' },
      },
      status: {
        addresses: o.addresses ?? [{ type: 'InternalIP', address: '192.168.56.11' }],
        capacity: { cpu: '2' },
        allocatable: { cpu: '2' },
        conditions: o.conditions ?? [
          { type: 'Ready', status: 'False' },
          { type: 'NetworkUnavailable', status: 'True' },
        ],
      },
    });
    const agent = (nodeName: string | undefined) => ({
      username: 'system:serviceaccount:kube-system:podwire',
      extra: nodeName ? { 'authentication.kubernetes.io/node-name': [nodeName] } : {},
    });
    /** The policy's verdict: undefined when allowed, else the failing validation's message. */
    const admit = async (user: Obj, oldObject: Obj, object: Obj): Promise<string | undefined> => {
      const { evaluate } = await import('@marcbachmann/cel-js');
      const spec = vap().spec;
      const request = { userInfo: user, operation: 'UPDATE', subResource: 'status' };
      if (!spec.matchConditions.every((m: Obj) => evaluate(m.expression, { request }) === true)) return undefined;
      const variables: Obj = {};
      for (const v of spec.variables) variables[v.name] = evaluate(v.expression, { request, object, oldObject, variables });
      for (const v of spec.validations)
        if (evaluate(v.expression, { request, object, oldObject, variables }) !== true) return v.message ?? v.messageExpression;
      return undefined;
    };
    const ready = (n: Obj): Obj => {
      const m = structuredClone(n);
      m.metadata.annotations['podwire.dev/vtep-mac'] = '02:00:00:00:00:01';
      m.status.conditions = m.status.conditions.map((c: Obj) => (c.type === 'NetworkUnavailable' ? { ...c, status: 'False' } : c));
      return m;
    };

    it('matches changes to nodes/status by podwire only, and is bound to deny', () => {
      expect(vap().spec.matchConstraints.resourceRules).toEqual([
        { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['nodes/status'] },
      ]);
      expect(byKind('ValidatingAdmissionPolicyBinding').spec).toEqual({ policyName: vap().metadata.name, validationActions: ['Deny'] });
    });

    it("admits the agent's own patch of its own node: podwire's annotations and NetworkUnavailable", async () => {
      const n1 = node('node1');
      expect(await admit(agent('node1'), n1, ready(n1))).toBeUndefined();
      // kubelet and others are not this policy's business
      expect(
        await admit({ username: 'system:node:node1', extra: {} }, n1, { ...n1, metadata: { ...n1.metadata, labels: {} } }),
      ).toBeUndefined();
    });

    it('refuses another node, a token without a node, and any other change to its own', async () => {
      const n2 = node('node2');
      expect(await admit(agent('node1'), n2, ready(n2))).toMatch(/may not change Node/);
      expect(await admit(agent(undefined), n2, ready(n2))).toMatch(/may not change Node/);
      const n1 = node('node1');
      const relabel = ready(n1);
      relabel.metadata.labels['node-role.kubernetes.io/control-plane'] = '';
      expect(await admit(agent('node1'), n1, relabel)).toMatch(/labels, addresses/);
      const readdress = ready(n1);
      readdress.status.addresses = [{ type: 'InternalIP', address: '10.0.0.9' }];
      expect(await admit(agent('node1'), n1, readdress)).toMatch(/labels, addresses/);
      const markReady = ready(n1);
      markReady.status.conditions[0].status = 'True';
      expect(await admit(agent('node1'), n1, markReady)).toMatch(/only the NetworkUnavailable condition/);
      const foreign = ready(n1);
      foreign.metadata.annotations['kubeadm.alpha.kubernetes.io/cri-socket'] = 'unix:///evil';
      expect(await admit(agent('node1'), n1, foreign)).toMatch(/only podwire\.dev\/ annotations/);
      const dropped = ready(n1);
      delete dropped.metadata.annotations['kubeadm.alpha.kubernetes.io/cri-socket'];
      expect(await admit(agent('node1'), n1, dropped)).toMatch(/only podwire\.dev\/ annotations/);
    });
  });

  it('runs on every node in the host network with NET_ADMIN/NET_RAW only, hardened, as its service account', () => {
    const ds = byKind('DaemonSet');
    const pod = ds.spec.template.spec;
    expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels);
    expect(pod.hostNetwork).toBe(true);
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
    expect(pod.serviceAccountName).toBe(byKind('ServiceAccount').metadata.name);
    expect(ds.metadata.namespace).toBe(byKind('ServiceAccount').metadata.namespace);
    const agent = pod.containers.find((c: Obj) => c.name === 'agent');
    expect(agent.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] });
    expect(pod.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    for (const c of [...pod.initContainers, ...pod.containers]) {
      expect(c.securityContext, c.name).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
      expect(c.securityContext.privileged ?? false, c.name).toBe(false);
      expect(c.securityContext.capabilities.drop, c.name).toEqual(['ALL']);
    }
    // read-only root: anything that writes a temp file has a /tmp of its own
    expect(agent.volumeMounts).toContainEqual(expect.objectContaining({ mountPath: '/tmp' }));
    expect(agent.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
  });

  it('installs the binary and the config from an init container; the agent holds no write access to /etc/cni/net.d', () => {
    const pod = byKind('DaemonSet').spec.template.spec;
    const hostPath = (c: Obj, mountPath: string): string | undefined => {
      const m = c.volumeMounts.find((v: Obj) => v.mountPath === mountPath);
      return pod.volumes.find((v: Obj) => v.name === m?.name)?.hostPath?.path;
    };
    const install = pod.initContainers.find((c: Obj) => c.name === 'install-cni');
    const iarg = (k: string) => (install.args as string[]).find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
    expect(install.command).toEqual(['podwire', 'install']);
    expect(hostPath(install, iarg('bin-dir')!)).toBe('/opt/cni/bin');
    expect(hostPath(install, iarg('conf-dir')!)).toBe('/etc/cni/net.d');
    const agent = pod.containers.find((c: Obj) => c.name === 'agent');
    const arg = (k: string) => (agent.args as string[]).find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
    expect(arg('cni-conf-dir')).toBe('none');
    expect(agent.volumeMounts.map((m: Obj) => hostPath(agent, m.mountPath))).not.toContain('/etc/cni/net.d');
    // Both read the same template and name the same subnet file.
    expect(iarg('agent-conflist')).toBe(arg('conflist-template'));
    expect(iarg('subnet-file')).toBe(arg('subnet-file'));
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
    for (const f of flags([...install.command, ...install.args])) expect(installHelp, f).toContain(`${f} `);
  });

  const agentOf = () => byKind('DaemonSet').spec.template.spec.containers.find((c: Obj) => c.name === 'agent');
  const argOf = (k: string) => (agentOf().args as string[]).find((a) => a.startsWith(`--${k}=`))?.split('=')[1];

  it('runs on Linux nodes of both architectures; probes on 127.0.0.1, metrics on the node address for a token', async () => {
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
    // Health and readiness on loopback only (kubelet probes a hostNetwork pod there); metrics on the
    // node's address, behind the API server's TokenReview and SubjectAccessReview.
    expect(argOf('status-addr')).toBe('127.0.0.1:9471');
    expect(argOf('metrics-addr')).toBe('$(HOST_IP):9472');
    expect(agent.args).toContain('--metrics-auth');
    expect(agent.env).toContainEqual({ name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } });
    const port = Number(argOf('status-addr')!.split(':').pop());
    const mport = Number(argOf('metrics-addr')!.split(':').pop());
    const named = (p: string | number) => (typeof p === 'number' ? p : agent.ports.find((x: Obj) => x.name === p)?.containerPort);
    expect(agent.livenessProbe.httpGet).toMatchObject({ host: '127.0.0.1', path: '/healthz' });
    expect(agent.readinessProbe.httpGet).toMatchObject({ host: '127.0.0.1', path: '/readyz' });
    expect(named(agent.livenessProbe.httpGet.port)).toBe(port);
    expect(named(agent.readinessProbe.httpGet.port)).toBe(port);
    // hostNetwork: the declared ports are the node's
    expect(agent.ports).toContainEqual(expect.objectContaining({ containerPort: port, hostPort: port }));
    expect(agent.ports).toContainEqual(expect.objectContaining({ containerPort: mport, hostPort: mport }));
    expect(byKind('DaemonSet').spec.template.metadata.annotations['prometheus.io/port']).toBe(String(mport));
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
