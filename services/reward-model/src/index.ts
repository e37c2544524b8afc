import type * as grpc from '@grpc/grpc-js';
import { RewardModelServiceService, Stage } from '@rlhf/proto';
import {
  createJudgeService,
  type JudgeServiceOptions,
  type StageServiceModule,
  unary,
} from '@rlhf/service-kit';
import { rewardJudgeHandler } from './judge-worker.js';
import { type BatchingOptions, batchingFromEnv, defaultBatching, RewardScorer } from './reward-scorer.js';
import { defaultScoreLimits, type ScoreLimits } from './score-request.js';
import { scoreHandler } from './score-rpc.js';
import { serviceInfo } from './service-info.js';
import { rewardUtf8Schemas } from './utf8-schemas.js';

export { judgeShard as judgeRewardShard } from './judge-worker.js';
export { charCount, RewardScorer } from './reward-scorer.js';
export { defaultScoreLimits, type ScoreLimits } from './score-request.js';

/** The stage the reward-model's training worker serves. */
export const rewardTrainingStages = { [Stage.STAGE_REWARD_MODEL]: 'rm' } as const;

export interface RewardModelServiceOptions extends JudgeServiceOptions {
  limits?: Partial<ScoreLimits>;
  /** Dynamic batching; default: RLHF_SCORE_BATCH_WINDOW_MS / RLHF_SCORE_MAX_BATCH, else 0 ms (one event-loop turn) and 64. */
  batching?: Partial<BatchingOptions>;
}

/** The reward-model service with the given limits and batching (the `rlhf serve` default uses none). */
export function createRewardModelService(options: RewardModelServiceOptions = {}): StageServiceModule {
  const limits: ScoreLimits = { ...defaultScoreLimits, ...options.limits };
  return createJudgeService(
    {
      ...serviceInfo,
      grpcServiceName: 'rlhf.v1.RewardModelService',
      definition: RewardModelServiceService as unknown as grpc.ServiceDefinition,
      utf8Schemas: rewardUtf8Schemas,
      trainingStages: rewardTrainingStages,
      createJudge: (cache, ctx) =>
        new RewardScorer(
          cache,
          { ...defaultBatching, ...batchingFromEnv(), ...options.batching },
          ctx.metrics,
        ),
      judgeRpcs: (scorer, deps) => ({ score: unary('Score', deps, scoreHandler(scorer, limits)) }),
      judgeHandler: ({ store, judge }) => rewardJudgeHandler({ store, scorer: judge }),
    },
    options,
  );
}

/**
 * Scores responses with a Bradley-Terry reward model (with a length penalty) and trains reward models;
 * with NATS, also judges JUDGE shards of the reward type and trains REWARD_MODEL shards.
 */
export const rewardModelService: StageServiceModule = createRewardModelService();
