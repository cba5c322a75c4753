// Types for fake-apiserver.mjs (plain JavaScript so it can also run as its own process).
import type { V1Node } from '@kubernetes/client-node';

export interface Patch {
  name: string;
  body: any;
  contentType?: string;
}

export interface FakeApiServer {
  emitter: { onPatch(p: Patch): void; onWatches(n: number): void };
  patches: Patch[];
  listen(port: number, host: string): Promise<number>;
  readonly url: string;
  node(name: string): V1Node | undefined;
  add(node: V1Node): void;
  sneak(node: V1Node): void;
  update(node: V1Node): void;
  remove(name: string): void;
  put(kind: 'Pod' | 'Namespace' | 'NetworkPolicy', object: object): void;
  delete(kind: 'Pod' | 'Namespace' | 'NetworkPolicy', namespace: string | undefined, name: string): void;
  requests: { at: number; path: string; watch: boolean; status: number }[];
  fault(f: {
    status?: number;
    retryAfter?: number;
    ms?: number;
    emptyLists?: number;
    without?: string[];
    times?: number;
    truncate?: number;
    slowMs?: number;
    pageSize?: number;
    expireContinue?: boolean;
    clear?: boolean;
  }): void;
  dropWatches(): void;
  compact(): void;
  restart(ms: number): Promise<void>;
  close(): Promise<void>;
}

export function kubeNode(name: string, internalIP: string, podCIDR?: string): V1Node;
export function fakeApiServer(o?: { nodes?: V1Node[] }): FakeApiServer;
export function kubeconfigYaml(url: string): string;
