/**
 * VllmClusterPort over a real API server. The run's vLLM objects are listed by label on each pass that
 * needs them (a run has at most one server at a time, and a pass waiting for one requeues itself), so
 * the controller keeps no informer for Deployments and Services. Creates treat 409 and deletes 404 as
 * done: every name is deterministic.
 */
import type { AppsV1Api, CoreV1Api, V1Deployment, V1Service } from '@kubernetes/client-node';
import { labels, managedByValue } from '../resources.js';
import { componentLabel, componentValue } from './vllm-manifests.js';
import type { VllmClusterPort } from './vllm-servers.js';

const codeOf = (err: unknown) => (err as { code?: number } | null)?.code;

async function ignoring(code: number, call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (err) {
    if (codeOf(err) !== code) throw err;
  }
}

export class KubeVllmCluster implements VllmClusterPort {
  constructor(
    private readonly api: { apps: AppsV1Api; core: CoreV1Api },
    /** Counts API requests by verb and resource, as KubeCluster does. */
    private readonly count: (what: string) => void = () => {},
  ) {}

  private selector(run: string): string {
    return `${labels.managedBy}=${managedByValue},${labels.run}=${run},${componentLabel}=${componentValue}`;
  }

  async deploymentsOf(namespace: string, run: string): Promise<V1Deployment[]> {
    this.count('list deployments');
    const list = await this.api.apps.listNamespacedDeployment({
      namespace,
      labelSelector: this.selector(run),
    });
    return list.items;
  }

  async servicesOf(namespace: string, run: string): Promise<V1Service[]> {
    this.count('list services');
    const list = await this.api.core.listNamespacedService({ namespace, labelSelector: this.selector(run) });
    return list.items;
  }

  async createDeployment(d: V1Deployment): Promise<void> {
    this.count('create deployments');
    await ignoring(
      409,
      this.api.apps.createNamespacedDeployment({ namespace: d.metadata?.namespace as string, body: d }),
    );
  }

  async createService(s: V1Service): Promise<void> {
    this.count('create services');
    await ignoring(
      409,
      this.api.core.createNamespacedService({ namespace: s.metadata?.namespace as string, body: s }),
    );
  }

  async deleteDeployment(namespace: string, name: string): Promise<void> {
    this.count('delete deployments');
    await ignoring(
      404,
      this.api.apps.deleteNamespacedDeployment({ name, namespace, propagationPolicy: 'Background' }),
    );
  }

  async deleteService(namespace: string, name: string): Promise<void> {
    this.count('delete services');
    await ignoring(404, this.api.core.deleteNamespacedService({ name, namespace }));
  }
}
