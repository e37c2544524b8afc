/**
 * Training jobs of one process: a FIFO queue in front of a single training slot (training saturates the
 * cores, so two jobs at once would only both run slower), with JobStatus snapshots, watches that stream
 * TrainingEvent until the job ends, cancellation through an AbortSignal, and idempotent client-chosen ids.
 * It knows nothing of gRPC or NATS: events go to the `onEvent` hooks, which a service wires to a watch
 * stream, a NATS subject or a stage worker's progress.
 */
import { createHash, randomUUID } from 'node:crypto';
import { asRlhfError, invalidArgument, RlhfError } from '@rlhf/platform';
import {
  JobState,
  type JobStatus,
  type ModelRef,
  type TrainingEvent,
  type TrainingMetrics,
  type TrainingObjective,
} from '@rlhf/proto';
import { EventChannel } from './event-channel.js';

/** What a running job tells its watchers. */
export interface JobReporter {
  /** A logged optimizer step: updates step, total_steps and latest_metrics, and emits a progress event. */
  step(metrics: TrainingMetrics): void;
  /** The current phase (`fetching the dataset`, `publishing the model`), shown as JobStatus.message. */
  phase(message: string): void;
}

/**
 * The work of a job. Resolves with the model it wrote. When `signal` aborts it should stop after the
 * current step and reject (nothing published); it may keep a partial checkpoint to resume from.
 */
export type JobRun = (signal: AbortSignal, report: JobReporter) => Promise<ModelRef>;

export interface JobSpec {
  /** Client-chosen id (a DNS label, at most 63 characters); empty or absent: a UUID. */
  id?: string;
  objective: TrainingObjective;
  labels?: Record<string, string>;
  /**
   * What makes two starts "the same request" (see `requestFingerprint`): a repeated id with the same
   * fingerprint returns the existing job, with another one it is ALREADY_EXISTS.
   */
  fingerprint: string;
  run: JobRun;
  /** This job's events only, in order (e.g. a stage worker forwarding progress). */
  onEvent?: (event: TrainingEvent) => void;
}

export interface JobManagerOptions {
  /** Jobs that may wait for the slot; one more is RESOURCE_EXHAUSTED. Default 16. */
  maxQueued?: number;
  /** Finished jobs remembered for Get and Watch, oldest forgotten first. Default 100. */
  maxFinished?: number;
  /** Every job's events, e.g. to publish them on NATS. Must not throw. */
  onEvent?: (event: TrainingEvent, status: JobStatus) => void;
  /**
   * A job failed on something other than an RlhfError (a bug, or a library's error whose text may quote
   * what it read): its detail goes here (the server log), the caller sees only that it was internal.
   */
  onInternalError?: (jobId: string, err: unknown) => void;
}

interface Job {
  /** Order of acceptance, 1-based; list pages resume after one. */
  seq: number;
  status: JobStatus;
  fingerprint: string;
  run: JobRun;
  controller: AbortController;
  cancelReason: string | null;
  watchers: Set<EventChannel<TrainingEvent>>;
  onEvent: ((event: TrainingEvent) => void) | undefined;
  done: Promise<JobStatus>;
  resolveDone: (status: JobStatus) => void;
}

const jobIdPattern = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const terminal = new Set([
  JobState.JOB_STATE_SUCCEEDED,
  JobState.JOB_STATE_FAILED,
  JobState.JOB_STATE_CANCELLED,
]);

export function isTerminal(state: JobState): boolean {
  return terminal.has(state);
}

/** A stable digest of a request's JSON form (object keys sorted), for JobSpec.fingerprint. */
export function requestFingerprint(json: unknown): string {
  const stable = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(stable);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, stable((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return createHash('sha256')
    .update(JSON.stringify(stable(json)))
    .digest('hex');
}

function copyStatus(s: JobStatus): JobStatus {
  return { ...s, labels: { ...s.labels } };
}

export class JobManager {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private current: Job | null = null;
  private closing = false;
  private lastSeq = 0;

  constructor(private readonly o: JobManagerOptions = {}) {}

  /** Jobs that may wait behind the running one. */
  get maxQueued(): number {
    return this.o.maxQueued ?? 16;
  }

  /** Jobs waiting for the slot. */
  get queued(): number {
    return this.queue.length;
  }

  /** The running job's id, or null. */
  get runningId(): string | null {
    return this.current?.status.id ?? null;
  }

  /**
   * The job already started under a client-chosen id with this fingerprint, or null when the id is free (or
   * empty); ALREADY_EXISTS when the id holds a different request, INVALID_ARGUMENT for a malformed id. Lets a
   * service answer a retried start before checking its inputs again.
   */
  lookup(id: string, fingerprint: string): JobStatus | null {
    if (id === '') return null;
    if (!jobIdPattern.test(id)) {
      throw invalidArgument(
        'job_id',
        `"${id}" is not a valid job id`,
        'use a DNS label: at most 63 characters of a-z, 0-9 and -, starting and ending with a letter or digit',
      );
    }
    const existing = this.jobs.get(id);
    if (!existing) return null;
    if (existing.fingerprint === fingerprint) return copyStatus(existing.status);
    throw new RlhfError('ALREADY_EXISTS', `job "${id}" exists with a different request`, {
      field: 'job_id',
      fix: 'choose another job_id, or repeat the original request exactly',
    });
  }

  /** Queues a job (or finds the one already started with this id, see `lookup`) and returns its status. */
  submit(spec: JobSpec): JobStatus {
    const id = spec.id ?? '';
    const existing = this.lookup(id, spec.fingerprint);
    if (existing) return existing;
    if (this.closing)
      throw new RlhfError('UNAVAILABLE', 'the server is shutting down', { fix: 'retry on another replica' });
    const max = this.maxQueued;
    if (this.queue.length >= max) {
      throw new RlhfError(
        'RESOURCE_EXHAUSTED',
        `the job queue is full: ${max} jobs wait behind the running one, the server's limit (--train-max-queued)`,
        {
          field: 'job_id',
          fix: 'retry after a job finishes, use another replica, or start the server with a larger --train-max-queued',
        },
      );
    }
    let resolveDone: (status: JobStatus) => void = () => {};
    const done = new Promise<JobStatus>((resolve) => {
      resolveDone = resolve;
    });
    this.lastSeq += 1;
    const job: Job = {
      seq: this.lastSeq,
      status: {
        id: id === '' ? randomUUID() : id,
        objective: spec.objective,
        state: JobState.JOB_STATE_QUEUED,
        step: 0,
        totalSteps: 0,
        message: '',
        errorCode: '',
        createdAt: new Date(),
        labels: { ...spec.labels },
      },
      fingerprint: spec.fingerprint,
      run: spec.run,
      controller: new AbortController(),
      cancelReason: null,
      watchers: new Set(),
      onEvent: spec.onEvent,
      done,
      resolveDone,
    };
    this.jobs.set(job.status.id, job);
    this.queue.push(job);
    this.renumberQueue();
    this.emit(job, { $case: 'stateChanged', value: copyStatus(job.status) });
    this.pump();
    return copyStatus(job.status);
  }

  /** The job's current status; NOT_FOUND for an unknown id. */
  get(id: string): JobStatus {
    return copyStatus(this.find(id).status);
  }

  /**
   * Up to `limit` jobs accepted after `afterSeq` that `keep` admits, in the order they were accepted, with
   * the last one's sequence number (to resume from) and whether more follow. Finished jobs the manager has
   * forgotten (see maxFinished) are gone from every page.
   */
  list(
    keep: (status: JobStatus) => boolean,
    afterSeq: number,
    limit: number,
  ): { jobs: JobStatus[]; lastSeq: number; more: boolean } {
    const jobs: JobStatus[] = [];
    let lastSeq = afterSeq;
    // The map iterates in insertion order, which is acceptance order: ids are never re-inserted.
    for (const job of this.jobs.values()) {
      if (job.seq <= afterSeq || !keep(job.status)) continue;
      if (jobs.length === limit) return { jobs, lastSeq, more: true };
      jobs.push(copyStatus(job.status));
      lastSeq = job.seq;
    }
    return { jobs, lastSeq, more: false };
  }

  /** Resolves with the job's final status once it ends. */
  wait(id: string): Promise<JobStatus> {
    return this.find(id).done.then(copyStatus);
  }

  /**
   * The job's events: its current status first (or only `finished` for an ended job), then progress and
   * state changes, ending after `finished`, or when `signal` aborts. NOT_FOUND (thrown at once) for an
   * unknown id.
   */
  watch(id: string, signal?: AbortSignal): AsyncIterable<TrainingEvent> {
    const job = this.find(id);
    const channel: EventChannel<TrainingEvent> = new EventChannel({
      droppable: (e) => e.event?.$case === 'progress',
      onStop: () => job.watchers.delete(channel),
    });
    const now = copyStatus(job.status);
    if (isTerminal(now.state)) {
      channel.push({ jobId: id, time: new Date(), event: { $case: 'finished', value: now } });
      channel.close();
    } else {
      channel.push({ jobId: id, time: new Date(), event: { $case: 'stateChanged', value: now } });
      job.watchers.add(channel);
    }
    return { [Symbol.asyncIterator]: () => channel.read(signal) };
  }

  /**
   * Cancels a job: a queued one ends CANCELLED at once, a running one is signalled and ends CANCELLED when
   * its run gives up (its partial checkpoint is kept). A finished job is left as it is. Returns the status.
   */
  cancel(id: string, reason = ''): JobStatus {
    const job = this.find(id);
    if (isTerminal(job.status.state) || job.cancelReason !== null) return copyStatus(job.status);
    job.cancelReason = reason === '' ? 'cancelled on request' : `cancelled: ${reason}`;
    const i = this.queue.indexOf(job);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.renumberQueue();
      this.finish(job, JobState.JOB_STATE_CANCELLED, job.cancelReason, 'CANCELLED');
    } else {
      job.status.message = `${job.cancelReason}; stopping after the current step`;
      job.controller.abort(new RlhfError('CANCELLED', job.cancelReason));
    }
    return copyStatus(job.status);
  }

  /** Refuses new jobs, cancels every queued and running one, and waits for the running one to stop. */
  async close(reason = 'the server is shutting down'): Promise<void> {
    this.closing = true;
    for (const job of [...this.queue]) this.cancel(job.status.id, reason);
    const running = this.current;
    if (running) {
      this.cancel(running.status.id, reason);
      await running.done;
    }
  }

  private find(id: string): Job {
    const job = id === '' ? undefined : this.jobs.get(id);
    if (!job) {
      throw new RlhfError('NOT_FOUND', `no job "${id}" on this server`, {
        field: 'job_id',
        fix: 'use the id StartTrainingJob returned; finished jobs are forgotten after a while',
      });
    }
    return job;
  }

  private renumberQueue(): void {
    this.queue.forEach((job, i) => {
      job.status.message =
        i === 0 && this.current === null
          ? 'queued: next'
          : `queued: position ${i + 1} of ${this.queue.length}`;
    });
  }

  private emit(job: Job, event: TrainingEvent['event']): void {
    const e: TrainingEvent = { jobId: job.status.id, time: new Date(), event };
    for (const w of job.watchers) w.push(e);
    job.onEvent?.(e);
    this.o.onEvent?.(e, copyStatus(job.status));
  }

  private pump(): void {
    if (this.current !== null) return;
    const job = this.queue.shift();
    if (!job) return;
    this.current = job;
    this.renumberQueue();
    void this.runJob(job);
  }

  private async runJob(job: Job): Promise<void> {
    job.status.state = JobState.JOB_STATE_RUNNING;
    job.status.startedAt = new Date();
    job.status.message = 'starting';
    this.emit(job, { $case: 'stateChanged', value: copyStatus(job.status) });
    const reporter: JobReporter = {
      step: (metrics) => {
        if (isTerminal(job.status.state)) return;
        const m: TrainingMetrics = { ...metrics, time: metrics.time ?? new Date() };
        job.status.step = m.step;
        job.status.totalSteps = m.totalSteps;
        job.status.latestMetrics = m;
        if (job.cancelReason === null) job.status.message = `training: step ${m.step} of ${m.totalSteps}`;
        this.emit(job, { $case: 'progress', value: m });
      },
      phase: (message) => {
        if (!isTerminal(job.status.state) && job.cancelReason === null) job.status.message = message;
      },
    };
    try {
      const output = await job.run(job.controller.signal, reporter);
      job.status.output = output;
      this.finish(job, JobState.JOB_STATE_SUCCEEDED, `succeeded: the model is at ${output.uri}`, '');
    } catch (err) {
      if (job.cancelReason !== null) {
        this.finish(job, JobState.JOB_STATE_CANCELLED, job.cancelReason, 'CANCELLED');
      } else {
        const known = asRlhfError(err);
        if (!known) this.o.onInternalError?.(job.status.id, err);
        const message = known ? known.describe() : 'internal error; see the server log';
        this.finish(job, JobState.JOB_STATE_FAILED, message, known?.code ?? 'INTERNAL');
      }
    } finally {
      this.current = null;
      this.pump();
    }
  }

  private finish(job: Job, state: JobState, message: string, errorCode: string): void {
    job.status.state = state;
    job.status.message = message;
    job.status.errorCode = errorCode;
    job.status.finishedAt = new Date();
    this.emit(job, { $case: 'finished', value: copyStatus(job.status) });
    for (const w of job.watchers) w.close();
    job.watchers.clear();
    job.resolveDone(copyStatus(job.status));
    this.forgetOldJobs();
  }

  private forgetOldJobs(): void {
    const max = this.o.maxFinished ?? 100;
    const finished = [...this.jobs.values()].filter((j) => isTerminal(j.status.state));
    for (const job of finished.slice(0, Math.max(0, finished.length - max))) this.jobs.delete(job.status.id);
  }
}
