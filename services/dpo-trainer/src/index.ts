import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { ArtifactRouter, type ServiceContext, type ServiceModule } from '@rlhf/platform';
import { DpoTrainerServiceService } from '@rlhf/proto';
import {
  defaultTrainLimits,
  JobManager,
  jobEventPublisher,
  jobMetricsHook,
  type TrainLimits,
} from '@rlhf/service-kit';
import type { TrainJobDeps } from './train-job.js';
import { startTrainWorkers } from './train-worker.js';
import { trainerImplementation } from './trainer-rpcs.js';

export { runTrainingJob, type TrainJobDeps } from './train-job.js';
export { planFromRequest, planFromShard, type TrainingPlan } from './training-plan.js';

export interface DpoTrainerServiceOptions {
  /** Where nats-obj:// models are unpacked. Default $RLHF_MODEL_CACHE or <tmp>/rlhf-model-cache. */
  cacheDir?: string;
  /** Working directories of jobs (data, checkpoints). Default $RLHF_WORK_DIR or <tmp>/rlhf-dpo-trainer. */
  workDir?: string;
  /** Resumable checkpoint every N optimizer steps. Default 50. */
  saveEvery?: number;
  /** Jobs that may wait behind the running one. Default 16. */
  maxQueued?: number;
  limits?: Partial<TrainLimits>;
  /** Serve TRAIN and SFT shards over NATS when the process has a NATS connection. Default true. */
  trainWorker?: boolean;
  /** The stage workers' redelivery timeout (they heartbeat every third of it). Default 30 s. */
  ackWaitMs?: number;
}

interface State {
  jobs: JobManager;
  train: TrainJobDeps;
}

const name = 'dpo-trainer';
const summary = 'Runs DPO and SFT training jobs with progress, writing new policy checkpoints.';

/** The DPO trainer: DpoTrainerService over a one-at-a-time job queue, and TRAIN/SFT shard workers. */
export function createDpoTrainerService(options: DpoTrainerServiceOptions = {}): ServiceModule {
  const limits: TrainLimits = { ...defaultTrainLimits, ...options.limits };
  const states = new WeakMap<ServiceContext, State>();
  const stateOf = (ctx: ServiceContext): State => {
    let s = states.get(ctx);
    if (!s) {
      const publish = ctx.nats ? jobEventPublisher(ctx.nats, name, ctx.logger) : null;
      let jobs: JobManager | null = null;
      const metrics = jobMetricsHook(ctx.metrics, () => jobs?.queued ?? 0);
      jobs = new JobManager({
        ...(options.maxQueued === undefined ? {} : { maxQueued: options.maxQueued }),
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
      s = {
        jobs,
        train: {
          store: new ArtifactRouter(ctx.nats),
          cacheDir: options.cacheDir ?? process.env.RLHF_MODEL_CACHE ?? join(tmpdir(), 'rlhf-model-cache'),
          workDir: options.workDir ?? process.env.RLHF_WORK_DIR ?? join(tmpdir(), 'rlhf-dpo-trainer'),
          saveEvery: options.saveEvery ?? 50,
        },
      };
      states.set(ctx, s);
    }
    return s;
  };

  return {
    name,
    summary,
    grpcServiceName: 'rlhf.v1.DpoTrainerService',
    bindings: (ctx) => {
      const s = stateOf(ctx);
      return [
        {
          name: 'rlhf.v1.DpoTrainerService',
          definition: DpoTrainerServiceService as unknown as grpc.ServiceDefinition,
          implementation: trainerImplementation({
            logger: ctx.logger,
            metrics: ctx.metrics,
            jobs: s.jobs,
            train: s.train,
            limits,
          }),
        },
      ];
    },
    start: async (ctx) => {
      const s = stateOf(ctx);
      const workers =
        ctx.nats && options.trainWorker !== false
          ? await startTrainWorkers({
              nats: ctx.nats,
              logger: ctx.logger,
              jobs: s.jobs,
              deps: s.train,
              limits,
              ...(options.ackWaitMs === undefined ? {} : { ackWaitMs: options.ackWaitMs }),
            })
          : [];
      return async () => {
        // Cancel first, so a worker's shard in hand ends after one step (and is handed back) instead of
        // holding the stop until training finishes; the checkpoint lets the next attempt resume.
        await s.jobs.close();
        await Promise.all(workers.map((w) => w.stop()));
      };
    },
  };
}

/** Runs DPO and SFT training jobs with progress; with NATS, also trains TRAIN and SFT shards. */
export const dpoTrainerService: ServiceModule = createDpoTrainerService();
