// A CRI client, as kubelet is one: runtime.v1 over gRPC on the runtime's unix socket, with the proto
// subset in runtime-v1.proto. Field names stay as the proto spells them (snake_case), enums as names.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { ROOT } from '../netns.js';

export interface PortMapping {
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  container_port: number;
  host_port: number;
  host_ip?: string;
}

export interface SandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  log_directory?: string;
  port_mappings?: PortMapping[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: unknown;
}

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface SandboxStatus {
  id: string;
  metadata: SandboxConfig['metadata'];
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  network: { ip: string; additional_ips: { ip: string }[] } | null;
}

export interface CriClient {
  version(): Promise<{ runtime_name: string; runtime_version: string; runtime_api_version: string }>;
  status(): Promise<RuntimeCondition[]>;
  runPodSandbox(config: SandboxConfig): Promise<string>;
  podSandboxStatus(id: string): Promise<SandboxStatus>;
  listPodSandbox(): Promise<SandboxStatus[]>;
  stopPodSandbox(id: string): Promise<void>;
  removePodSandbox(id: string): Promise<void>;
  close(): void;
}

const PROTO = join(ROOT, 'test', 'helpers', 'cri', 'runtime-v1.proto');

/** What kubelet sets for an ordinary pod: its own network, IPC and PID namespaces per container. */
export const POD_LINUX = { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } };

export function criClient(socket: string, timeoutMs = 60_000): CriClient {
  const def = loader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true });
  const api = (grpc.loadPackageDefinition(def) as any).runtime.v1;
  const client = new api.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  const call = <T>(method: string, req: object): Promise<T> =>
    new Promise((resolve, reject) =>
      client[method](req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) =>
        err ? reject(new Error(`CRI ${method}: ${err.details || err.message}`)) : resolve(res),
      ),
    );
  return {
    version: () => call('Version', { version: 'v1' }),
    status: async () => (await call<{ status: { conditions: RuntimeCondition[] } }>('Status', {})).status.conditions,
    runPodSandbox: async (config) =>
      (await call<{ pod_sandbox_id: string }>('RunPodSandbox', { config: { linux: POD_LINUX, ...config } })).pod_sandbox_id,
    podSandboxStatus: async (id) => (await call<{ status: SandboxStatus }>('PodSandboxStatus', { pod_sandbox_id: id })).status,
    listPodSandbox: async () => (await call<{ items: SandboxStatus[] }>('ListPodSandbox', {})).items,
    stopPodSandbox: async (id) => void (await call('StopPodSandbox', { pod_sandbox_id: id })),
    removePodSandbox: async (id) => void (await call('RemovePodSandbox', { pod_sandbox_id: id })),
    close: () => client.close(),
  };
}
