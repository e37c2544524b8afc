/**
 * The Job controller half of the fake node: keeps `parallelism` pods running until `completions` pods
 * succeeded (per index for Indexed Jobs), replaces failed pods until more than `backoffLimit` failed,
 * enforces activeDeadlineSeconds, and writes Job status (active, ready, succeeded, failed, startTime,
 * completionTime, completedIndexes, conditions) through the status subresource.
 */
import type { InProcessClient, JsonObject } from '../fake-api-server/index.js';

interface JobSpec {
  parallelism?: number;
  completions?: number | null;
  backoffLimit?: number;
  activeDeadlineSeconds?: number;
  completionMode?: 'NonIndexed' | 'Indexed';
  suspend?: boolean;
  template: {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec: JsonObject;
  };
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastProbeTime?: string;
  lastTransitionTime?: string;
}

interface JobStatus {
  active?: number;
  ready?: number;
  succeeded?: number;
  failed?: number;
  terminating?: number;
  startTime?: string;
  completionTime?: string;
  completedIndexes?: string;
  conditions?: Condition[];
  uncountedTerminatedPods?: JsonObject;
}

interface Meta {
  name: string;
  namespace: string;
  uid: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { uid: string; controller?: boolean }[];
}

const INDEX = 'batch.kubernetes.io/job-completion-index';
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

const metaOf = (o: JsonObject) => o.metadata as Meta;
const phaseOf = (pod: JsonObject) => ((pod.status ?? {}) as { phase?: string }).phase ?? 'Pending';
const restartsOf = (pod: JsonObject) =>
  (
    ((pod.status ?? {}) as { containerStatuses?: { restartCount?: number }[] }).containerStatuses ?? []
  ).reduce((n, c) => n + (c.restartCount ?? 0), 0);
const isReady = (pod: JsonObject) =>
  (((pod.status ?? {}) as { conditions?: Condition[] }).conditions ?? []).some(
    (c) => c.type === 'Ready' && c.status === 'True',
  );

function finished(status: JobStatus): boolean {
  return (status.conditions ?? []).some(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
}

/** `0,2-4` from [0,2,3,4], the format of status.completedIndexes. */
function formatIndexes(indexes: number[]): string {
  const sorted = [...new Set(indexes)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j;
  }
  return parts.join(',');
}

export class JobController {
  private readonly queued = new Set<string>();
  private readonly deadlineTimers = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly api: InProcessClient,
    private readonly opts: { backoffMs: number; nodeName: string },
  ) {}

  onJob(type: string, job: JsonObject): void {
    if (type === 'DELETED') return;
    const m = metaOf(job);
    this.enqueue(m.namespace, m.name);
  }

  onPod(pod: JsonObject): void {
    const m = metaOf(pod);
    const job = m.labels?.['batch.kubernetes.io/job-name'];
    if (job && m.ownerReferences?.some((r) => r.controller)) this.enqueue(m.namespace, job);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Work is deferred to its own turn, so it never runs inside the store's notification of a write. */
  private enqueue(namespace: string, name: string, delayMs = 0): void {
    const key = `${namespace}/${name}`;
    if (delayMs > 0) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.enqueue(namespace, name);
      }, delayMs);
      this.timers.add(t);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    setImmediate(() => {
      this.queued.delete(key);
      if (!this.stopped) this.reconcile(namespace, name);
    });
  }

  private reconcile(namespace: string, name: string): void {
    const job = this.api.find('jobs.batch', namespace, name);
    if (!job || metaOf(job).deletionTimestamp) return;
    const uid = metaOf(job).uid;
    const spec = job.spec as JobSpec;
    const status: JobStatus = structuredClone((job.status ?? {}) as JobStatus);
    const pods = this.api
      .list('pods', namespace, { labelSelector: `batch.kubernetes.io/controller-uid=${uid}` })
      .filter((p) => metaOf(p).ownerReferences?.some((r) => r.uid === uid));
    const active = pods.filter(
      (p) => !['Succeeded', 'Failed'].includes(phaseOf(p)) && !metaOf(p).deletionTimestamp,
    );
    const succeededPods = pods.filter((p) => phaseOf(p) === 'Succeeded');
    const failedPods = pods.filter((p) => phaseOf(p) === 'Failed');
    const onFailure = (spec.template.spec as { restartPolicy?: string }).restartPolicy === 'OnFailure';
    // Pods that finished are counted once and kept in status even if they are later deleted.
    const failed = Math.max(
      status.failed ?? 0,
      failedPods.length + (onFailure ? active.reduce((n, p) => n + restartsOf(p), 0) : 0),
    );
    const indexed = spec.completionMode === 'Indexed';
    const doneIndexes = succeededPods.map((p) => Number(metaOf(p).annotations?.[INDEX]));
    const succeeded = indexed ? new Set(doneIndexes).size : succeededPods.length;

    if (finished(status)) {
      if (status.conditions?.some((c) => c.type === 'Failed')) for (const p of active) this.deletePod(p);
      return;
    }
    status.startTime ??= now();
    status.uncountedTerminatedPods ??= {};
    status.terminating = 0;
    status.succeeded = succeeded;
    status.failed = failed;
    if (indexed) status.completedIndexes = formatIndexes(doneIndexes);

    const completions = spec.completions ?? null;
    const backoffLimit = spec.backoffLimit ?? 6;
    const deadline = spec.activeDeadlineSeconds;
    const elapsedMs = Date.now() - Date.parse(status.startTime);
    if (failed > backoffLimit) {
      this.fail(status, active, 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
    } else if (deadline !== undefined && elapsedMs >= deadline * 1000) {
      this.fail(status, active, 'DeadlineExceeded', 'Job was active longer than specified deadline');
    } else if (completions === null ? succeeded > 0 && active.length === 0 : succeeded >= completions) {
      this.complete(status);
    } else if (!spec.suspend) {
      const created = this.createPods(job, spec, active, doneIndexes, succeeded, failedPods.length);
      status.active = active.length + created;
      status.ready = active.filter(isReady).length;
      if (deadline !== undefined && !this.deadlineTimers.has(uid)) {
        this.deadlineTimers.add(uid);
        this.enqueue(namespace, name, deadline * 1000 - elapsedMs + 1);
      }
    }
    if (status.active === undefined) status.active = 0;
    this.writeStatus(job, status);
  }

  private createPods(
    job: JsonObject,
    spec: JobSpec,
    active: JsonObject[],
    doneIndexes: number[],
    succeeded: number,
    failedCount: number,
  ): number {
    const m = metaOf(job);
    const parallelism = spec.parallelism ?? 1;
    if (failedCount > 0 && this.opts.backoffMs > 0 && !this.backoffElapsed(job, failedCount)) return 0;
    let want: number[];
    if (spec.completionMode === 'Indexed') {
      const busy = new Set([...doneIndexes, ...active.map((p) => Number(metaOf(p).annotations?.[INDEX]))]);
      const free: number[] = [];
      for (let i = 0; i < (spec.completions ?? 0); i++) if (!busy.has(i)) free.push(i);
      want = free.slice(0, Math.max(0, parallelism - active.length));
    } else {
      const remaining = spec.completions == null ? parallelism : spec.completions - succeeded;
      const n = Math.max(0, Math.min(parallelism, remaining) - active.length);
      want = Array.from({ length: n }, () => -1);
    }
    for (const index of want) this.api.create('pods', m.namespace, this.podFor(job, spec, index));
    return want.length;
  }

  private readonly failuresSeen = new Map<string, { count: number; at: number }>();

  private backoffElapsed(job: JsonObject, failedCount: number): boolean {
    const m = metaOf(job);
    const seen = this.failuresSeen.get(m.uid);
    if (!seen || seen.count !== failedCount) {
      this.failuresSeen.set(m.uid, { count: failedCount, at: Date.now() });
      this.enqueue(m.namespace, m.name, this.opts.backoffMs);
      return false;
    }
    if (Date.now() - seen.at >= this.opts.backoffMs) return true;
    this.enqueue(m.namespace, m.name, this.opts.backoffMs - (Date.now() - seen.at));
    return false;
  }

  private podFor(job: JsonObject, spec: JobSpec, index: number): JsonObject {
    const m = metaOf(job);
    const template = structuredClone(spec.template);
    const labels: Record<string, string> = { ...(template.metadata?.labels ?? {}) };
    const annotations: Record<string, string> = { ...(template.metadata?.annotations ?? {}) };
    const podSpec = template.spec as { containers: { env?: JsonObject[] }[]; nodeName?: string };
    if (index >= 0) {
      labels[INDEX] = String(index);
      annotations[INDEX] = String(index);
      for (const c of podSpec.containers) {
        c.env = [
          ...(c.env ?? []),
          {
            name: 'JOB_COMPLETION_INDEX',
            valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${INDEX}']` } },
          },
        ];
      }
    }
    podSpec.nodeName = this.opts.nodeName;
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: index >= 0 ? `${m.name}-${index}-` : `${m.name}-`,
        labels,
        annotations,
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'Job',
            name: m.name,
            uid: m.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: podSpec,
    };
  }

  private fail(status: JobStatus, active: JsonObject[], reason: string, message: string): void {
    for (const p of active) this.deletePod(p);
    const t = now();
    status.active = 0;
    status.ready = 0;
    status.conditions = [
      ...(status.conditions ?? []),
      { type: 'FailureTarget', status: 'True', reason, message, lastProbeTime: t, lastTransitionTime: t },
      { type: 'Failed', status: 'True', reason, message, lastProbeTime: t, lastTransitionTime: t },
    ];
  }

  private complete(status: JobStatus): void {
    const t = now();
    const reason = 'CompletionsReached';
    const message = 'Reached expected number of succeeded pods';
    status.active = 0;
    status.ready = 0;
    status.completionTime = t;
    status.conditions = [
      ...(status.conditions ?? []),
      {
        type: 'SuccessCriteriaMet',
        status: 'True',
        reason,
        message,
        lastProbeTime: t,
        lastTransitionTime: t,
      },
      { type: 'Complete', status: 'True', reason, message, lastProbeTime: t, lastTransitionTime: t },
    ];
  }

  private deletePod(pod: JsonObject): void {
    const m = metaOf(pod);
    if (this.api.find('pods', m.namespace, m.name))
      this.api.delete('pods', m.namespace, m.name, { propagationPolicy: 'Background' });
  }

  private writeStatus(job: JsonObject, status: JobStatus): void {
    if (JSON.stringify(job.status ?? {}) === JSON.stringify(status)) return;
    this.api.updateStatus('jobs.batch', metaOf(job).namespace, { ...job, status });
  }
}
