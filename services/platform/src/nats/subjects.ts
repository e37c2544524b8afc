/**
 * NATS names, defined once. Subject tokens come from Kubernetes names, which are DNS labels and never hold
 * `.`, `*` or `>`; anything else is rejected rather than escaped, so a subject is always readable.
 */
import { invalidArgument } from '../errors.js';

export const streams = {
  /** Work-queue stream: one message per shard of stage work, removed once acked. */
  work: 'RLHF_WORK',
  /** Limits stream: stage lifecycle events, kept for replay by watchers. */
  events: 'RLHF_EVENTS',
} as const;

export const buckets = {
  /** Object Store for artifacts (datasets, shard outputs, manifests, checkpoints). */
  artifacts: 'rlhf-artifacts',
  /** KV for run and stage state of local runs. */
  state: 'rlhf-state',
} as const;

/**
 * The work queues' stage tokens: the one list of them (the `<stage>` of every work and event subject). The
 * workers' proto-Stage-to-token map (service-kit) and the orchestrator's shard specs are typed by it; which
 * stages a run has, in which order, is the stage table's (@rlhf/workflow).
 */
export const stages = [
  'sft',
  'reward-model',
  'preference-model',
  'generate',
  'judge',
  // JUDGE shards of a preference-model judge have their own queue: on a work-queue stream each subject has
  // one consumer, and a reward-model worker pulling a shard it cannot do would use up its deliveries.
  'judge-preference',
  'pair',
  'train',
  'evaluate',
] as const;
export type WorkStage = (typeof stages)[number];

const tokenPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function token(value: string, field: string): string {
  if (!tokenPattern.test(value)) {
    throw invalidArgument(
      field,
      `"${value}" cannot be a subject token`,
      'use a lowercase DNS label (a-z, 0-9, -)',
    );
  }
  return value;
}

function stageToken(stage: string): string {
  if (!(stages as readonly string[]).includes(stage)) {
    throw invalidArgument('stage', `unknown stage "${stage}"`, `use one of ${stages.join(', ')}`);
  }
  return stage;
}

/**
 * `rlhf.work.<namespace>.<stage>.<run>.<iteration>`. The namespace comes first after `rlhf.work` so an
 * operator can grant a tenant `rlhf.work.<namespace>.>` and nothing else.
 */
export function workSubject(namespace: string, stage: string, run: string, iteration: number): string {
  return `rlhf.work.${token(namespace, 'namespace')}.${stageToken(stage)}.${token(run, 'run')}.${iteration}`;
}

/**
 * Every work subject of one stage, in every namespace, for the workers that serve that stage for all runs.
 * One filter per stage: on a work-queue stream the consumers' filters must not overlap.
 */
export function workFilter(stage: string): string {
  return `rlhf.work.*.${stageToken(stage)}.>`;
}

export interface WorkSubjectParts {
  namespace: string;
  stage: string;
  run: string;
  iteration: number;
}

/** The parts of a work subject, or null when it is not one (an older layout, or a hand-made subject). */
export function parseWorkSubject(subject: string): WorkSubjectParts | null {
  const parts = subject.split('.');
  if (parts.length !== 6 || parts[0] !== 'rlhf' || parts[1] !== 'work') return null;
  const [, , namespace, stage, run, iteration] = parts as [string, string, string, string, string, string];
  if (!/^(0|[1-9][0-9]{0,8})$/.test(iteration)) return null;
  if (![namespace, run].every((t) => tokenPattern.test(t))) return null;
  if (!(stages as readonly string[]).includes(stage)) return null;
  return { namespace, stage, run, iteration: Number(iteration) };
}

/** `rlhf.events.<namespace>.<run>.<iteration>.<stage>` */
export function eventSubject(namespace: string, run: string, iteration: number, stage: string): string {
  return `rlhf.events.${token(namespace, 'namespace')}.${token(run, 'run')}.${iteration}.${stageToken(stage)}`;
}

/** Every event of one run (all iterations and stages). */
export function runEventsFilter(namespace: string, run: string): string {
  return `rlhf.events.${token(namespace, 'namespace')}.${token(run, 'run')}.>`;
}

/** Deduplication id of one shard's work message: the same shard published twice is stored once. */
export function shardMsgId(
  namespace: string,
  stage: string,
  run: string,
  iteration: number,
  shard: number,
): string {
  return `${namespace}/${run}/${iteration}/${stage}/${shard}`;
}

/**
 * KV key (bucket `rlhf-state`) of a run's record, written by whoever starts the run (`rlhf run`, a stage
 * Job) before any of its work is published. Stage workers execute work only for runs that have one.
 */
export function runRecordKey(namespace: string, run: string): string {
  return `${token(namespace, 'namespace')}.${token(run, 'run')}.run`;
}

/**
 * `rlhf.jobs.<service>.<job_id>`: live TrainingEvent messages of one training job (core NATS, not kept;
 * WatchTrainingJob replays a job's state). `<service>` is the service name (`dpo-trainer`, `reward-model`).
 */
export function jobEventSubject(service: string, jobId: string): string {
  return `rlhf.jobs.${token(service, 'service')}.${token(jobId, 'job_id')}`;
}

/** Every job event of one service. */
export function jobEventsFilter(service: string): string {
  return `rlhf.jobs.${token(service, 'service')}.>`;
}
