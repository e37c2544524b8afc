/**
 * ClusterPort over a real API server: reads from the informer caches, writes through client-node 1.4
 * (merge patches on the status subresource, creates that treat 409 AlreadyExists as done since every name
 * the controller creates is deterministic). Counts its API requests for the metrics.
 */
import {
  type BatchV1Api,
  type CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
} from '@kubernetes/client-node';
import type { ClusterPort } from './reconcile.js';
import {
  group,
  type IterationObject,
  type IterationStatus,
  iterationPlural,
  labels,
  type RunObject,
  type RunStatus,
  runPlural,
  version,
} from './resources.js';
import type { SupervisedInformer } from './runtime/index.js';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const codeOf = (err: unknown) => (err as { code?: number } | null)?.code;

/** A merge patch that sets `next` and removes the top-level fields of `previous` that `next` lacks. */
export function statusPatch(next: object, previous: object): Record<string, unknown> {
  const patch: Record<string, unknown> = { ...next };
  for (const k of Object.keys(previous)) if (!(k in next)) patch[k] = null;
  return patch;
}

/** A run deleted while it was being reconciled needs nothing more: a 404 is not an error. */
async function goneIsDone(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (err) {
    if (codeOf(err) !== 404) throw err;
  }
}

export class KubeCluster implements ClusterPort {
  /** API requests sent, by verb and resource (e.g. "create jobs"). */
  readonly requests = new Map<string, number>();

  constructor(
    private readonly api: { custom: CustomObjectsApi; batch: BatchV1Api },
    private readonly caches: {
      runs: SupervisedInformer<RunObject & { metadata: { name?: string } }>;
      iterations: SupervisedInformer<IterationObject>;
      jobs: SupervisedInformer<V1Job>;
    },
  ) {}

  private count(what: string): void {
    this.requests.set(what, (this.requests.get(what) ?? 0) + 1);
  }

  getRun(namespace: string, name: string): RunObject | undefined {
    return this.caches.runs.get(namespace, name);
  }

  jobsOf(namespace: string, run: string): V1Job[] {
    return this.caches.jobs
      .list()
      .filter((j) => j.metadata?.namespace === namespace && j.metadata.labels?.[labels.run] === run);
  }

  iterationsOf(namespace: string, run: string): IterationObject[] {
    return this.caches.iterations
      .list()
      .filter((i) => i.metadata.namespace === namespace && i.spec?.run === run);
  }

  async createJob(job: V1Job): Promise<void> {
    this.count('create jobs');
    try {
      await this.api.batch.createNamespacedJob({ namespace: job.metadata?.namespace as string, body: job });
    } catch (err) {
      if (codeOf(err) !== 409) throw err;
    }
  }

  async deleteJob(namespace: string, name: string): Promise<void> {
    this.count('delete jobs');
    try {
      await this.api.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' });
    } catch (err) {
      if (codeOf(err) !== 404) throw err;
    }
  }

  async createIteration(obj: IterationObject): Promise<IterationObject> {
    const ref = { group, version, namespace: obj.metadata.namespace as string, plural: iterationPlural };
    this.count('create rlhfiterations');
    try {
      return (await this.api.custom.createNamespacedCustomObject({ ...ref, body: obj })) as IterationObject;
    } catch (err) {
      if (codeOf(err) !== 409) throw err;
      this.count('get rlhfiterations');
      return (await this.api.custom.getNamespacedCustomObject({
        ...ref,
        name: obj.metadata.name as string,
      })) as IterationObject;
    }
  }

  async patchRunStatus(
    namespace: string,
    name: string,
    status: RunStatus,
    previous: RunStatus,
  ): Promise<void> {
    this.count('patch rlhfruns/status');
    await this.api.custom.patchNamespacedCustomObjectStatus(
      { group, version, namespace, plural: runPlural, name, body: { status: statusPatch(status, previous) } },
      mergePatch,
    );
  }

  async patchIterationStatus(
    namespace: string,
    name: string,
    status: IterationStatus,
    previous: IterationStatus,
  ): Promise<void> {
    this.count('patch rlhfiterations/status');
    await this.api.custom.patchNamespacedCustomObjectStatus(
      {
        group,
        version,
        namespace,
        plural: iterationPlural,
        name,
        body: { status: statusPatch(status, previous) },
      },
      mergePatch,
    );
  }

  /** Optimistic: carries the cached resourceVersion, so a concurrent change gives a 409 and a retry. */
  async setRunFinalizers(run: RunObject, finalizers: string[]): Promise<void> {
    this.count('patch rlhfruns');
    const patch = this.api.custom.patchNamespacedCustomObject(
      {
        group,
        version,
        namespace: run.metadata.namespace as string,
        plural: runPlural,
        name: run.metadata.name as string,
        body: { metadata: { finalizers, resourceVersion: run.metadata.resourceVersion } },
      },
      mergePatch,
    );
    await goneIsDone(patch);
  }
}
