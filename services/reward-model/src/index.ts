import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { ArtifactRouter, type ServiceContext, type ServiceModule } from '@rlhf/platform';
import { RewardModelServiceService } from '@rlhf/proto';
import { ModelCache, unary } from '@rlhf/service-kit';
import { startRewardJudgeWorker } from './judge-worker.js';
import { type BatchingOptions, batchingFromEnv, defaultBatching, RewardScorer } from './reward-scorer.js';
import { defaultScoreLimits, type ScoreLimits } from './score-request.js';
import { scoreHandler } from './score-rpc.js';

export { charCount, RewardScorer } from './reward-scorer.js';
export { defaultScoreLimits, type ScoreLimits } from './score-request.js';

export interface RewardModelServiceOptions {
  limits?: Partial<ScoreLimits>;
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
}

const summary =
  'Scores responses with a Bradley-Terry reward model (with a length penalty) and trains reward models.';

/** The reward-model service with the given limits and batching (the `rlhf serve` default uses none). */
export function createRewardModelService(options: RewardModelServiceOptions = {}): ServiceModule {
  const limits: ScoreLimits = { ...defaultScoreLimits, ...options.limits };
  const states = new WeakMap<ServiceContext, State>();
  const stateOf = (ctx: ServiceContext): State => {
    let s = states.get(ctx);
    if (!s) {
      const batching: BatchingOptions = { ...defaultBatching, ...batchingFromEnv(), ...options.batching };
      const store = new ArtifactRouter(ctx.nats);
      const cache = new ModelCache({
        store,
        cacheDir: options.cacheDir ?? process.env.RLHF_MODEL_CACHE ?? join(tmpdir(), 'rlhf-model-cache'),
      });
      s = { store, cache, scorer: new RewardScorer(cache, batching, ctx.metrics) };
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
          definition: RewardModelServiceService as unknown as grpc.ServiceDefinition,
          implementation: {
            score: unary('Score', deps, scoreHandler(s.scorer, limits)),
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
      return async () => {
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
 * with NATS, also judges JUDGE shards of the reward type.
 */
export const rewardModelService: ServiceModule = createRewardModelService();
