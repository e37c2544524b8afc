import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { ArtifactRouter, type ServiceContext, type ServiceModule } from '@rlhf/platform';
import { RewardModelServiceService, Stage } from '@rlhf/proto';
import {
  createTrainingRuntime,
  defaultTrainLimits,
  ModelCache,
  type RunningWorker,
  startTrainWorkers,
  type TrainingRuntime,
  type TrainingRuntimeOptions,
  type TrainLimits,
  unary,
  withUtf8Checks,
} from '@rlhf/service-kit';
import { startRewardJudgeWorker } from './judge-worker.js';
import { type BatchingOptions, batchingFromEnv, defaultBatching, RewardScorer } from './reward-scorer.js';
import { defaultScoreLimits, type ScoreLimits } from './score-request.js';
import { scoreHandler } from './score-rpc.js';
import { rewardTrainingImplementation } from './train-rpcs.js';
import { rewardUtf8Schemas } from './utf8-schemas.js';

export { charCount, RewardScorer } from './reward-scorer.js';
export { defaultScoreLimits, type ScoreLimits } from './score-request.js';

/** The stage the reward-model's training worker serves. */
export const rewardTrainingStages = { [Stage.STAGE_REWARD_MODEL]: 'rm' } as const;

export interface RewardModelServiceOptions {
  limits?: Partial<ScoreLimits>;
  /** Training jobs (TrainRewardModel and REWARD_MODEL shards): work directory, checkpoints, queue. */
  training?: TrainingRuntimeOptions & { limits?: Partial<TrainLimits> };
  /** Serve REWARD_MODEL shards over NATS when the process has a NATS connection. Default true. */
  trainWorker?: boolean;
  /** The training worker's redelivery timeout (it heartbeats every third of it). Default 30 s. */
  ackWaitMs?: number;
  /** Dynamic batching; default: RLHF_SCORE_BATCH_WINDOW_MS / RLHF_SCORE_MAX_BATCH, else 0 ms (one event-loop turn) and 64. */
  batching?: Partial<BatchingOptions>;
  /** Where models fetched from the Object Store are unpacked. Default $RLHF_MODEL_CACHE or the temp dir. */
  cacheDir?: string;
  /** Serve JUDGE shards over NATS when the process has a NATS connection. Default true. */
  judgeWorker?: boolean;
}

interface State {
  store: ArtifactRouter;
  cache: ModelCache;
  scorer: RewardScorer;
  training: TrainingRuntime;
}

const summary =
  'Scores responses with a Bradley-Terry reward model (with a length penalty) and trains reward models.';

/** The reward-model service with the given limits and batching (the `rlhf serve` default uses none). */
export function createRewardModelService(options: RewardModelServiceOptions = {}): ServiceModule {
  const limits: ScoreLimits = { ...defaultScoreLimits, ...options.limits };
  const trainLimits: TrainLimits = { ...defaultTrainLimits, ...options.training?.limits };
  const cacheDir = options.cacheDir ?? process.env.RLHF_MODEL_CACHE ?? join(tmpdir(), 'rlhf-model-cache');
  const states = new WeakMap<ServiceContext, State>();
  const stateOf = (ctx: ServiceContext): State => {
    let s = states.get(ctx);
    if (!s) {
      const batching: BatchingOptions = { ...defaultBatching, ...batchingFromEnv(), ...options.batching };
      const store = new ArtifactRouter(ctx.nats);
      const cache = new ModelCache({ store, cacheDir });
      const training = createTrainingRuntime(ctx, 'reward-model', { cacheDir, ...options.training }, store);
      s = { store, cache, scorer: new RewardScorer(cache, batching, ctx.metrics), training };
      states.set(ctx, s);
    }
    return s;
  };

  return {
    name: 'reward-model',
    summary,
    grpcServiceName: 'rlhf.v1.RewardModelService',
    bindings: (ctx) => {
      const s = stateOf(ctx);
      const deps = { logger: ctx.logger, metrics: ctx.metrics };
      return [
        {
          name: 'rlhf.v1.RewardModelService',
          // String fields are checked for invalid UTF-8 in the raw bytes (service-kit utf8-fields.ts).
          definition: withUtf8Checks(
            RewardModelServiceService as unknown as grpc.ServiceDefinition,
            rewardUtf8Schemas,
          ),
          implementation: {
            score: unary('Score', deps, scoreHandler(s.scorer, limits)),
            ...rewardTrainingImplementation({ ...deps, rt: s.training, limits: trainLimits }),
          },
        },
      ];
    },
    start: async (ctx) => {
      const s = stateOf(ctx);
      const judge =
        ctx.nats && options.judgeWorker !== false
          ? await startRewardJudgeWorker({
              nats: ctx.nats,
              logger: ctx.logger,
              store: s.store,
              scorer: s.scorer,
            })
          : null;
      const trainers: RunningWorker[] =
        ctx.nats && options.trainWorker !== false
          ? await startTrainWorkers({
              nats: ctx.nats,
              logger: ctx.logger,
              rt: s.training,
              stages: rewardTrainingStages,
              limits: trainLimits,
              ...(options.ackWaitMs === undefined ? {} : { ackWaitMs: options.ackWaitMs }),
            })
          : [];
      return async () => {
        // Training jobs are cancelled first (their checkpoints kept), so a shard in hand is handed back
        // after one step rather than holding the stop until it finishes.
        await s.training.jobs.close();
        await Promise.all(trainers.map((w) => w.stop()));
        await judge?.stop();
        // In-flight Score calls finish on the models before they are released.
        await s.scorer.idle();
        await s.cache.close();
      };
    },
  };
}

/**
 * Scores responses with a Bradley-Terry reward model (with a length penalty) and trains reward models;
 * with NATS, also judges JUDGE shards of the reward type and trains REWARD_MODEL shards.
 */
export const rewardModelService: ServiceModule = createRewardModelService();
