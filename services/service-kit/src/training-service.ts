/**
 * What the three training services share around a TrainingPlan: the process's JobManager (one job
 * training at a time, others queued; events to Prometheus, NATS and the log), which TrainingJobsService
 * (training-jobs-service.ts) serves over gRPC, and the training-shard handlers (TRAIN, SFT, REWARD_MODEL,
 * PREFERENCE_MODEL).
 *
 * Each training shard is queued as a job in the same JobManager as gRPC jobs. The stage worker keeps
 * the message alive with `working()` while the job waits and trains; progress goes out as StageProgress
 * events with the step's metrics (the last step's, held-out figures included, always); the shard is acked
 * only once the model is stored. A job cancelled under the worker (shutdown, a Cancel rpc) is handed back
 * for redelivery, and the next attempt resumes from its checkpoint.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainObjective } from '@rlhf/ml-engine';
import { type ErrorCode, grpcStatusOf, RlhfError, type ServiceContext } from '@rlhf/platform';
import { JobState, type Stage, StageWork } from '@rlhf/proto';
import { jobEventPublisher } from './job-events.js';
import { JobManager, requestFingerprint } from './job-manager.js';
import { jobMetricsHook } from './job-metrics.js';
import { defaultModelCacheDir } from './model-download-cache.js';
import { artifactStoreOf } from './service-store.js';
import { type ShardHandler, shardHandler } from './shard-handler.js';
import { type ShardContext, type ShardResult, stageToken } from './stage-worker.js';
import { checkTrainingInputs } from './train-inputs.js';
import { runTrainingJob, type TrainJobDeps } from './train-job.js';
import { defaultTrainLimits, type TrainLimits } from './train-options.js';
import { planTrainShard, wireObjectiveOf } from './training-plan.js';

export interface TrainingRuntimeOptions {
  /** Where nats-obj:// models are unpacked. Default $RLHF_MODEL_CACHE or <tmp>/rlhf-model-cache-<uid>. */
  cacheDir?: string;
  /** Working directories of jobs (data, checkpoints). Default $RLHF_WORK_DIR or <tmp>/rlhf-<service>. */
  workDir?: string;
  /** Resumable checkpoint every N optimizer steps. Default 50. */
  saveEvery?: number;
  /** Jobs that may wait behind the running one. Default 16; the serve flag --train-max-queued wins. */
  maxQueued?: number;
  /** Bounds on what a job may ask for; the serve flags (--train-max-*) win. */
  limits?: Partial<TrainLimits>;
}

/** A service's training state: its job queue, the bounds on jobs, and what jobs need to run. */
export interface TrainingRuntime {
  jobs: JobManager;
  limits: TrainLimits;
  train: TrainJobDeps;
}

/**
 * The JobManager of a training service in `ctx`: its events counted in Prometheus, published on
 * `rlhf.jobs.<service>.<job_id>` when connected to NATS, and state changes logged.
 */
export function createTrainingRuntime(
  ctx: ServiceContext,
  service: string,
  options: TrainingRuntimeOptions = {},
  store = artifactStoreOf(ctx),
): TrainingRuntime {
  const publish = ctx.nats ? jobEventPublisher(ctx.nats, service, ctx.logger) : null;
  const bounds = ctx.trainingBounds;
  const limits: TrainLimits = {
    ...defaultTrainLimits,
    ...options.limits,
    ...(bounds
      ? { maxSteps: bounds.maxSteps, maxEpochs: bounds.maxEpochs, maxDatasetBytes: bounds.maxDatasetBytes }
      : {}),
  };
  const maxQueued = bounds?.maxQueued ?? options.maxQueued;
  let jobs: JobManager | null = null;
  const metrics = jobMetricsHook(ctx.metrics, () => jobs?.queued ?? 0);
  jobs = new JobManager({
    ...(maxQueued === undefined ? {} : { maxQueued }),
    onInternalError: (job, err) => ctx.logger.error({ job, err }, 'training job failed on an internal error'),
    onEvent: (event, status) => {
      metrics(event, status);
      publish?.(event);
      const e = event.event;
      if (e && e.$case !== 'progress')
        ctx.logger.info(
          { job: event.jobId, state: e.value.state, message: e.value.message, labels: e.value.labels },
          `training job ${e.$case === 'finished' ? 'ended' : 'changed state'}`,
        );
    },
  });
  return {
    jobs,
    limits,
    train: {
      maxSteps: limits.maxSteps,
      store,
      cacheDir: options.cacheDir ?? defaultModelCacheDir(),
      ...(ctx.modelCacheMaxBytes === undefined ? {} : { cacheMaxBytes: ctx.modelCacheMaxBytes }),
      logger: ctx.logger,
      workDir: options.workDir ?? process.env.RLHF_WORK_DIR ?? join(tmpdir(), `rlhf-${service}`),
      saveEvery: options.saveEvery ?? 50,
    },
  };
}

/** Least time between two progress events of a shard (the last step's always goes out). */
const PROGRESS_EVERY_MS = 2000;

/** Trains one shard as a job of `rt` and resolves once its model is stored. */
export async function trainShard(
  work: StageWork,
  ctx: Pick<ShardContext, 'progress' | 'logger'>,
  rt: TrainingRuntime,
  stages: Partial<Record<Stage, TrainObjective>>,
  limits?: TrainLimits,
): Promise<ShardResult> {
  const plan = planTrainShard(work, stages, limits ?? rt.limits);
  await checkTrainingInputs(rt.train.store, plan, limits ?? rt.limits);
  const key = work.key;
  let lastProgress = 0;
  const started = rt.jobs.submit({
    objective: wireObjectiveOf[plan.objective],
    labels: {
      'rlhf.dev/namespace': key?.namespace ?? '',
      'rlhf.dev/run': key?.run ?? '',
      'rlhf.dev/iteration': String(key?.iteration ?? 0),
      'rlhf.dev/stage': key ? stageToken[key.stage] : '',
      'rlhf.dev/shard': String(work.shardIndex),
    },
    fingerprint: requestFingerprint(StageWork.toJSON(work)),
    run: (signal, report) => runTrainingJob(plan, rt.train, signal, report),
    onEvent: (event) => {
      if (event.event?.$case !== 'progress') return;
      const m = event.event.value;
      const now = Date.now();
      if (now - lastProgress < PROGRESS_EVERY_MS && m.step < m.totalSteps) return;
      lastProgress = now;
      const rate = m.etaSeconds > 0 ? (m.totalSteps - m.step) / m.etaSeconds : 0;
      ctx
        .progress({
          done: m.step,
          total: m.totalSteps,
          unit: 'steps',
          rate,
          etaSeconds: m.etaSeconds,
          training: m,
        })
        .catch((err: unknown) => ctx.logger.warn({ err }, 'could not report shard progress'));
    },
  });
  ctx.logger.info({ job: started.id, state: JobState[started.state] }, 'training job queued for the shard');
  const final = await rt.jobs.wait(started.id);
  if (final.state === JobState.JOB_STATE_SUCCEEDED) return { outputUri: plan.output.uri, items: 1 };
  if (final.state === JobState.JOB_STATE_CANCELLED) {
    // Not the input's fault: let another attempt (here or on another worker) resume from the checkpoint.
    throw new RlhfError('UNAVAILABLE', `training job ${final.id} was ${final.message}`);
  }
  const code = (final.errorCode in grpcStatusOf ? final.errorCode : 'INTERNAL') as ErrorCode;
  throw new RlhfError(code, final.message);
}

/** One handler per stage in `stages`, each training its shards through `rt`. */
export function trainShardHandlers(o: {
  rt: TrainingRuntime;
  stages: Partial<Record<Stage, TrainObjective>>;
  limits?: TrainLimits;
}): ShardHandler[] {
  return Object.keys(o.stages).map((s) => {
    const stage = Number(s) as Stage;
    return shardHandler(stage, stageToken[stage], (work, ctx) =>
      trainShard(work, ctx, o.rt, { [stage]: o.stages[stage] }, o.limits),
    );
  });
}
