import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { ArtifactRouter, type ServiceContext, type ServiceModule } from '@rlhf/platform';
import { PreferenceModelServiceService } from '@rlhf/proto';
import { ModelCache, unary } from '@rlhf/service-kit';
import { defaultPreferenceLimits, type PreferenceLimits } from './compare-request.js';
import { compareHandler, rankHandler } from './judge-rpcs.js';
import { startPreferenceJudgeWorker } from './judge-worker.js';
import { PreferenceJudge } from './preference-judge.js';

export { defaultPreferenceLimits, type PreferenceLimits } from './compare-request.js';
export { PreferenceJudge, rewardsFromRanking } from './preference-judge.js';

export interface PreferenceModelServiceOptions {
  limits?: Partial<PreferenceLimits>;
  /** Dynamic batching of Compare calls. */
  batching?: Partial<{ windowMs: number; maxBatchComparisons: number }>;
  /** Where models fetched from the Object Store are unpacked. Default $RLHF_MODEL_CACHE or the temp dir. */
  cacheDir?: string;
  /** Serve JUDGE shards of the preference type over NATS when connected. Default true. */
  judgeWorker?: boolean;
}

interface State {
  store: ArtifactRouter;
  cache: ModelCache;
  judge: PreferenceJudge;
}

const summary =
  'Judges P(a > b) with a pairwise preference model, debiased over both orders; ranks by tournament; trains preference models.';

/** The preference-model service with the given limits (the `rlhf serve` default uses none). */
export function createPreferenceModelService(options: PreferenceModelServiceOptions = {}): ServiceModule {
  const limits: PreferenceLimits = { ...defaultPreferenceLimits, ...options.limits };
  const batching = { windowMs: 2, maxBatchComparisons: 32, ...options.batching };
  const states = new WeakMap<ServiceContext, State>();
  const stateOf = (ctx: ServiceContext): State => {
    let s = states.get(ctx);
    if (!s) {
      const store = new ArtifactRouter(ctx.nats);
      const cache = new ModelCache({
        store,
        cacheDir: options.cacheDir ?? process.env.RLHF_MODEL_CACHE ?? join(tmpdir(), 'rlhf-model-cache'),
      });
      s = { store, cache, judge: new PreferenceJudge(cache, batching, ctx.metrics) };
      states.set(ctx, s);
    }
    return s;
  };

  return {
    name: 'preference-model',
    summary,
    grpcServiceName: 'rlhf.v1.PreferenceModelService',
    bindings: (ctx) => {
      const s = stateOf(ctx);
      const deps = { logger: ctx.logger, metrics: ctx.metrics };
      return [
        {
          name: 'rlhf.v1.PreferenceModelService',
          definition: PreferenceModelServiceService as unknown as grpc.ServiceDefinition,
          implementation: {
            compare: unary('Compare', deps, compareHandler(s.judge, limits)),
            rank: unary('Rank', deps, rankHandler(s.judge, limits)),
          },
        },
      ];
    },
    start: async (ctx) => {
      const s = stateOf(ctx);
      const judge =
        ctx.nats && options.judgeWorker !== false
          ? await startPreferenceJudgeWorker({
              nats: ctx.nats,
              logger: ctx.logger,
              store: s.store,
              judge: s.judge,
            })
          : null;
      return async () => {
        await judge?.stop();
        // In-flight calls finish on the models before they are released.
        await s.judge.idle();
        await s.cache.close();
      };
    },
  };
}

/**
 * Judges P(a > b) with a pairwise preference model, debiased over both orders; ranks by tournament; trains
 * preference models. With NATS, also judges JUDGE shards of the preference type.
 */
export const preferenceModelService: ServiceModule = createPreferenceModelService();
