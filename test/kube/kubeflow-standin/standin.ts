/**
 * A STAND-IN for Kubeflow Trainer's controller (with the JobSet controller it relies on), for tests: it is
 * not Kubeflow, only what a TrainJob's owner can observe of it. It watches TrainJobs in one namespace
 * through @kubernetes/client-node (so it runs against the fake API server and a real control plane alike),
 * resolves each one's runtime (runtime-resolve.ts), creates the batch/v1 Jobs it becomes (trainer-jobs.ts),
 * keeps their suspension in step with the TrainJob's (Kueue admits by unsuspending), and writes the
 * conditions and jobsStatus Trainer writes (trainjob-conditions.ts) through the status subresource.
 * Not modelled: JobSet's headless Service and its success/failure policies beyond "all Jobs complete" and
 * "a Job failed", TrainingRuntime mlPolicy plugins other than torch's env, activeDeadlineSeconds.
 */
import {
  BatchV1Api,
  CustomObjectsApi,
  type KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
} from '@kubernetes/client-node';
import { resolveRuntime } from './runtime-resolve.js';
import { trainerJobs } from './trainer-jobs.js';
import {
  runtimeNotSupportedReason,
  setCondition,
  trainJobFinished,
  trainJobStatus,
} from './trainjob-conditions.js';
import {
  type Json,
  jobSetNameLabel,
  type TrainJobCondition,
  trainerGroup,
  trainerVersion,
  trainJobPlural,
} from './trainjob-types.js';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const codeOf = (err: unknown) => (err as { code?: number } | null)?.code;

export interface StandInOptions {
  namespace: string;
  /** Told about errors of a reconcile (it is retried on the next event or resync). */
  onError?: (err: unknown) => void;
  /** Every TrainJob is reconciled again this often. Default 1000 ms. */
  resyncMs?: number;
}

type Informer = ReturnType<typeof makeInformer<Json & { metadata?: { name?: string } }>>;

export class KubeflowTrainerStandIn {
  private readonly custom: CustomObjectsApi;
  private readonly batch: BatchV1Api;
  private readonly informers: Informer[] = [];
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    kc: KubeConfig,
    private readonly o: StandInOptions,
  ) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.batch = kc.makeApiClient(BatchV1Api);
    const ns = o.namespace;
    const trainJobs = makeInformer<Json>(
      kc,
      `/apis/${trainerGroup}/${trainerVersion}/namespaces/${ns}/${trainJobPlural}`,
      async () =>
        (await this.custom.listNamespacedCustomObject({
          group: trainerGroup,
          version: trainerVersion,
          namespace: ns,
          plural: trainJobPlural,
        })) as never,
    );
    const jobs = makeInformer<Json>(
      kc,
      `/apis/batch/v1/namespaces/${ns}/jobs`,
      async () =>
        (await this.batch.listNamespacedJob({ namespace: ns, labelSelector: jobSetNameLabel })) as never,
      jobSetNameLabel,
    );
    for (const [informer, nameOf] of [
      [trainJobs, (o: Json) => o.metadata?.name as string | undefined],
      [jobs, (o: Json) => o.metadata?.labels?.[jobSetNameLabel] as string | undefined],
    ] as const) {
      for (const ev of ['add', 'update'] as const)
        informer.on(ev, (obj) => {
          const name = nameOf(obj);
          if (name) this.kick(name);
        });
      // client-node's informer stops on a network error: start it again, as a controller must.
      informer.on('error', (err) => {
        this.o.onError?.(err);
        if (!this.stopped) setTimeout(() => void informer.start().catch(() => {}), 500).unref();
      });
      this.informers.push(informer as Informer);
    }
  }

  async start(): Promise<this> {
    for (const i of this.informers) await i.start();
    this.timer = setInterval(() => void this.resync(), this.o.resyncMs ?? 1000);
    this.timer.unref();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const i of this.informers) await i.stop();
    await Promise.allSettled([...this.running.values()]);
  }

  private async resync(): Promise<void> {
    try {
      const list = (await this.custom.listNamespacedCustomObject({
        group: trainerGroup,
        version: trainerVersion,
        namespace: this.o.namespace,
        plural: trainJobPlural,
      })) as { items?: Json[] };
      for (const tj of list.items ?? []) this.kick(tj.metadata.name);
    } catch (err) {
      this.o.onError?.(err);
    }
  }

  /** One reconcile of a TrainJob at a time; an event during one runs another after it. */
  private kick(name: string): void {
    if (this.stopped) return;
    if (this.running.has(name)) {
      this.again.add(name);
      return;
    }
    const p = this.reconcile(name)
      .catch((err) => this.o.onError?.(err))
      .finally(() => {
        this.running.delete(name);
        if (this.again.delete(name)) this.kick(name);
      });
    this.running.set(name, p);
  }

  private async reconcile(name: string): Promise<void> {
    const ns = this.o.namespace;
    const ref = { group: trainerGroup, version: trainerVersion, namespace: ns, plural: trainJobPlural, name };
    let tj: Json;
    try {
      tj = (await this.custom.getNamespacedCustomObject(ref)) as Json;
    } catch (err) {
      if (codeOf(err) === 404) return;
      throw err;
    }
    if (tj.metadata.deletionTimestamp || trainJobFinished(tj)) return;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const runtime = await resolveRuntime(this.custom, tj);
    if (runtime.kind === 'unsupported') {
      const conditions = setCondition(
        (tj.status?.conditions ?? []) as TrainJobCondition[],
        { type: 'Failed', status: 'True', reason: runtimeNotSupportedReason, message: runtime.message },
        now,
      );
      await this.writeStatus(ref, { ...(tj.status ?? {}), conditions });
      return;
    }
    if (runtime.kind === 'missing') throw new Error(`TrainJob ${name}: ${runtime.message}`);
    const jobs: V1Job[] = [];
    for (const want of trainerJobs(tj, runtime.runtime)) {
      const jobName = want.metadata?.name as string;
      let job: V1Job;
      try {
        job = await this.batch.readNamespacedJob({ name: jobName, namespace: ns });
      } catch (err) {
        if (codeOf(err) !== 404) throw err;
        job = await this.batch.createNamespacedJob({ namespace: ns, body: want });
      }
      if ((job.spec?.suspend === true) !== (want.spec?.suspend === true))
        job = await this.batch.patchNamespacedJob(
          { name: jobName, namespace: ns, body: { spec: { suspend: want.spec?.suspend === true } } },
          mergePatch,
        );
      jobs.push(job);
    }
    await this.writeStatus(ref, trainJobStatus(tj, jobs, now), tj.status);
  }

  private async writeStatus(
    ref: { group: string; version: string; namespace: string; plural: string; name: string },
    status: Json,
    previous?: Json,
  ): Promise<void> {
    if (previous && JSON.stringify(previous) === JSON.stringify(status)) return;
    await this.custom.patchNamespacedCustomObjectStatus({ ...ref, body: { status } }, mergePatch);
  }
}
