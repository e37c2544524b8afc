/**
 * The NATS side of the trainer: TRAIN (DPO) and SFT shards, one training job each, queued in the same
 * JobManager as gRPC jobs (one job per process at a time). The stage worker keeps the message alive with
 * `working()` while the job waits and trains; progress goes out as StageProgress events with the step's
 * metrics; the shard is acked only once the model is stored. A job cancelled under the worker (shutdown,
 * CancelTrainingJob) is handed back for redelivery, and the next attempt resumes from its checkpoint.
 */
import { type ErrorCode, grpcStatusOf, type Logger, type NatsConnection, RlhfError } from '@rlhf/platform';
import { JobState, Stage, StageWork, TrainingObjective } from '@rlhf/proto';
import {
  type JobManager,
  type RunningWorker,
  requestFingerprint,
  type ShardContext,
  type ShardResult,
  startStageWorker,
  type TrainLimits,
} from '@rlhf/service-kit';
import { checkInputs } from './input-checks.js';
import { runTrainingJob, type TrainJobDeps } from './train-job.js';
import { planFromShard } from './training-plan.js';

/** Least time between two progress events of a shard. */
const PROGRESS_EVERY_MS = 2000;

export async function trainShard(
  work: StageWork,
  ctx: Pick<ShardContext, 'progress' | 'logger'>,
  jobs: JobManager,
  deps: TrainJobDeps,
  limits?: TrainLimits,
): Promise<ShardResult> {
  const plan = planFromShard(work, limits);
  await checkInputs(deps.store, plan);
  const key = work.key;
  let lastProgress = 0;
  const started = jobs.submit({
    objective:
      plan.objective === 'dpo'
        ? TrainingObjective.TRAINING_OBJECTIVE_DPO
        : TrainingObjective.TRAINING_OBJECTIVE_SFT,
    labels: {
      'rlhf.dev/namespace': key?.namespace ?? '',
      'rlhf.dev/run': key?.run ?? '',
      'rlhf.dev/iteration': String(key?.iteration ?? 0),
      'rlhf.dev/stage': plan.objective === 'dpo' ? 'train' : 'sft',
      'rlhf.dev/shard': String(work.shardIndex),
    },
    fingerprint: requestFingerprint(StageWork.toJSON(work)),
    run: (signal, report) => runTrainingJob(plan, deps, signal, report),
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
  const final = await jobs.wait(started.id);
  if (final.state === JobState.JOB_STATE_SUCCEEDED) return { outputUri: plan.output.uri, items: 1 };
  if (final.state === JobState.JOB_STATE_CANCELLED) {
    // Not the input's fault: let another attempt (here or on another worker) resume from the checkpoint.
    throw new RlhfError('UNAVAILABLE', `training job ${final.id} was ${final.message}`);
  }
  const code = (final.errorCode in grpcStatusOf ? final.errorCode : 'INTERNAL') as ErrorCode;
  throw new RlhfError(code, final.message);
}

export async function startTrainWorkers(o: {
  nats: NatsConnection;
  logger: Logger;
  jobs: JobManager;
  deps: TrainJobDeps;
  limits?: TrainLimits;
  ackWaitMs?: number;
}): Promise<RunningWorker[]> {
  const workers: RunningWorker[] = [];
  for (const [stage, name] of [
    [Stage.STAGE_TRAIN, 'train'],
    [Stage.STAGE_SFT, 'sft'],
  ] as const) {
    workers.push(
      await startStageWorker({
        nats: o.nats,
        stage,
        logger: o.logger.child({ worker: name }),
        ...(o.ackWaitMs === undefined ? {} : { ackWaitMs: o.ackWaitMs }),
        handle: (work, ctx) => trainShard(work, ctx, o.jobs, o.deps, o.limits),
      }),
    );
  }
  return workers;
}
