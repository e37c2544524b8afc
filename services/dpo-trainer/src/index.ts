import type { ServiceContext } from '@rlhf/platform';
import {
  createTrainingRuntime,
  type StageServiceModule,
  stageWorkNats,
  startShardWorkers,
  type TrainingRuntime,
  type TrainingRuntimeOptions,
  trainingJobsBinding,
  trainingJobsServiceName,
  trainShardHandlers,
} from '@rlhf/service-kit';
import { serviceInfo } from './service-info.js';
import { trainerStages } from './training-plan.js';

export { runTrainingJob, type TrainJobDeps } from '@rlhf/service-kit';
export { planFromShard, type TrainingPlan, trainerStages } from './training-plan.js';

export interface DpoTrainerServiceOptions extends TrainingRuntimeOptions {
  /** Serve TRAIN and SFT shards over NATS when the process has a NATS connection. Default true. */
  trainWorker?: boolean;
  /** The stage workers' redelivery timeout (they heartbeat every third of it). Default 30 s. */
  ackWaitMs?: number;
}

const { name, summary } = serviceInfo;

/** The DPO trainer: TrainingJobsService (SFT and DPO) over a one-at-a-time job queue, and TRAIN/SFT shard workers. */
export function createDpoTrainerService(options: DpoTrainerServiceOptions = {}): StageServiceModule {
  const states = new WeakMap<ServiceContext, TrainingRuntime>();
  const stateOf = (ctx: ServiceContext): TrainingRuntime => {
    let s = states.get(ctx);
    if (!s) {
      s = createTrainingRuntime(ctx, name, options);
      states.set(ctx, s);
    }
    return s;
  };

  const handlersOf = (s: TrainingRuntime) =>
    options.trainWorker === false
      ? []
      : trainShardHandlers({ rt: s, stages: trainerStages, limits: s.limits });

  return {
    name,
    summary,
    grpcServiceNames: [trainingJobsServiceName],
    bindings: (ctx) => [
      trainingJobsBinding(
        { logger: ctx.logger, metrics: ctx.metrics },
        stateOf(ctx),
        Object.values(trainerStages),
      ),
    ],
    shardHandlers: (ctx) => handlersOf(stateOf(ctx)),
    start: async (ctx) => {
      const s = stateOf(ctx);
      const nats = stageWorkNats(ctx);
      const workers = nats
        ? await startShardWorkers({
            nats,
            logger: ctx.logger,
            handlers: handlersOf(s),
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
export const dpoTrainerService: StageServiceModule = createDpoTrainerService();
