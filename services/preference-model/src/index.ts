import type * as grpc from '@grpc/grpc-js';
import { PreferenceModelServiceService, Stage } from '@rlhf/proto';
import {
  createJudgeService,
  type JudgeServiceOptions,
  type StageServiceModule,
  unary,
} from '@rlhf/service-kit';
import { defaultPreferenceLimits, type PreferenceLimits } from './compare-request.js';
import { compareHandler, rankHandler } from './judge-rpcs.js';
import { preferenceJudgeHandler } from './judge-worker.js';
import { PreferenceJudge } from './preference-judge.js';
import { serviceInfo } from './service-info.js';
import { preferenceUtf8Schemas } from './utf8-schemas.js';

export { defaultPreferenceLimits, type PreferenceLimits } from './compare-request.js';
export { judgeShard as judgePreferenceShard } from './judge-worker.js';
export { PreferenceJudge, rewardsFromRanking } from './preference-judge.js';

/** The stage the preference-model's training worker serves. */
export const preferenceTrainingStages = { [Stage.STAGE_PREFERENCE_MODEL]: 'pm' } as const;

export interface PreferenceModelServiceOptions extends JudgeServiceOptions {
  limits?: Partial<PreferenceLimits>;
  /** Dynamic batching of Compare calls. */
  batching?: Partial<{ windowMs: number; maxBatchComparisons: number }>;
}

/** The preference-model service with the given limits (the `rlhf serve` default uses none). */
export function createPreferenceModelService(
  options: PreferenceModelServiceOptions = {},
): StageServiceModule {
  const limits: PreferenceLimits = { ...defaultPreferenceLimits, ...options.limits };
  const batching = { windowMs: 2, maxBatchComparisons: 32, ...options.batching };
  return createJudgeService(
    {
      ...serviceInfo,
      grpcServiceName: 'rlhf.v1.PreferenceModelService',
      definition: PreferenceModelServiceService as unknown as grpc.ServiceDefinition,
      utf8Schemas: preferenceUtf8Schemas,
      trainingStages: preferenceTrainingStages,
      createJudge: (cache, ctx) => new PreferenceJudge(cache, batching, ctx.metrics),
      judgeRpcs: (judge, deps) => ({
        compare: unary('Compare', deps, compareHandler(judge, limits)),
        rank: unary('Rank', deps, rankHandler(judge, limits)),
      }),
      judgeHandler: preferenceJudgeHandler,
    },
    options,
  );
}

/**
 * Judges P(a > b) with a pairwise preference model, debiased over both orders; ranks by tournament; trains
 * preference models. With NATS, also judges JUDGE shards of the preference type and trains
 * PREFERENCE_MODEL shards.
 */
export const preferenceModelService: StageServiceModule = createPreferenceModelService();
