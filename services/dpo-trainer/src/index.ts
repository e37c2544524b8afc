import type * as grpc from '@grpc/grpc-js';
import type { ServiceContext } from '@rlhf/platform';
import { DpoTrainerServiceService } from '@rlhf/proto';
import {
  createTrainingRuntime,
  type StageServiceModule,
  startShardWorkers,
  type TrainingRuntime,
  type TrainingRuntimeOptions,
  trainShardHandlers,
  withUtf8Checks,
} from '@rlhf/service-kit';
import { serviceInfo } from './service-info.js';
import { trainerImplementation } from './trainer-rpcs.js';
import { trainerStages } from './training-plan.js';
import { trainerUtf8Schemas } from './utf8-schemas.js';

export { runTrainingJob, type TrainJobDeps } from '@rlhf/service-kit';
export { planFromRequest, planFromShard, type TrainingPlan } from './training-plan.js';

export interface DpoTrainerServiceOptions extends TrainingRuntimeOptions {
  /** Serve TRAIN and SFT shards over NATS when the process has a NATS connection. Default true. */
  trainWorker?: boolean;
  /** The stage workers' redelivery timeout (they heartbeat every third of it). Default 30 s. */
  ackWaitMs?: number;
}

const { name, summary } = serviceInfo;

/** The DPO trainer: DpoTrainerService over a one-at-a-time job queue, and TRAIN/SFT shard workers. */
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
    grpcServiceName: 'rlhf.v1.DpoTrainerService',
    bindings: (ctx) => [
      {
        name: 'rlhf.v1.DpoTrainerService',
        // String fields are checked for invalid UTF-8 in the raw bytes (service-kit utf8-fields.ts).
        definition: withUtf8Checks(
          DpoTrainerServiceService as unknown as grpc.ServiceDefinition,
          trainerUtf8Schemas,
        ),
        implementation: trainerImplementation({
          logger: ctx.logger,
          metrics: ctx.metrics,
          rt: stateOf(ctx),
          limits: stateOf(ctx).limits,
        }),
      },
    ],
    shardHandlers: (ctx) => handlersOf(stateOf(ctx)),
    start: async (ctx) => {
      const s = stateOf(ctx);
      const workers = ctx.nats
        ? await startShardWorkers({
            nats: ctx.nats,
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
