/**
 * ClusterPort over a real API server: reads from the informer caches, writes through client-node 1.4
 * (merge patches on the status subresource, creates that treat 409 AlreadyExists as done since every name
 * the controller creates is deterministic). Counts its API requests for the metrics.
 */
import { createHash } from 'node:crypto';
import {
  type BatchV1Api,
  type CoreV1Api,
  type CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
} from '@kubernetes/client-node';
import type { ClusterPort, RunEvent } from './reconcile.js';
import {
  apiVersion,
  group,
  type IterationObject,
  type IterationStatus,
  iterationPlural,
  labels,
  managedByValue,
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

/** Event messages are cut here, as client-go's recorder does. */
const eventMessageLimit = 1024;
const eventCountsKept = 1000;

export class KubeCluster implements ClusterPort {
  /** API requests sent, by verb and resource (e.g. "create jobs"). */
  readonly requests = new Map<string, number>();
  /** Times each Event was recorded by this process, for the count of a repeated one. */
  private readonly eventCounts = new Map<string, number>();

  constructor(
    private readonly api: { custom: CustomObjectsApi; batch: BatchV1Api; core: CoreV1Api },
    private readonly caches: {
      runs: SupervisedInformer<RunObject & { metadata: { name?: string } }>;
      iterations: SupervisedInformer<IterationObject>;
      jobs: SupervisedInformer<V1Job>;
    },
    /** Told when an Event could not be recorded (Events are best effort). */
    private readonly onEventError: (err: unknown, event: RunEvent) => void = () => {},
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

  /**
   * A core/v1 Event on the run, named after the run and a digest of what it says: the same Event recorded
   * again (a retried pass, a spec that went back to an earlier mistake) is patched (count, lastTimestamp)
   * instead of piling up.
   */
  async recordRunEvent(run: RunObject, event: RunEvent): Promise<void> {
    const namespace = run.metadata.namespace as string;
    const name = run.metadata.name as string;
    const digest = createHash('sha256')
      .update(`${run.metadata.uid ?? ''}\n${event.type}\n${event.reason}\n${event.message}`)
      .digest('hex')
      .slice(0, 16);
    const eventName = `${name}.${digest}`;
    const now = new Date();
    const message =
      event.message.length > eventMessageLimit
        ? `${event.message.slice(0, eventMessageLimit - 3)}...`
        : event.message;
    try {
      this.count('create events');
      await this.api.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name: eventName, namespace },
          involvedObject: {
            apiVersion,
            kind: 'RLHFRun',
            name,
            namespace,
            ...(run.metadata.uid ? { uid: run.metadata.uid } : {}),
            ...(run.metadata.resourceVersion ? { resourceVersion: run.metadata.resourceVersion } : {}),
          },
          type: event.type,
          reason: event.reason,
          message,
          count: 1,
          firstTimestamp: now,
          lastTimestamp: now,
          source: { component: managedByValue },
          reportingComponent: managedByValue,
        },
      });
      this.remember(eventName, 1);
    } catch (err) {
      if (codeOf(err) !== 409) {
        this.onEventError(err, event);
        return;
      }
      const count = (this.eventCounts.get(eventName) ?? 1) + 1;
      this.remember(eventName, count);
      try {
        this.count('patch events');
        await this.api.core.patchNamespacedEvent(
          { name: eventName, namespace, body: { count, lastTimestamp: now.toISOString() } },
          mergePatch,
        );
      } catch (patchErr) {
        this.onEventError(patchErr, event);
      }
    }
  }

  private remember(eventName: string, count: number): void {
    this.eventCounts.delete(eventName);
    this.eventCounts.set(eventName, count);
    if (this.eventCounts.size > eventCountsKept)
      this.eventCounts.delete(this.eventCounts.keys().next().value as string);
  }
}
