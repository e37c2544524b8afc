import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { ArtifactRouter, type ServiceContext, type ServiceModule } from '@rlhf/platform';
import { PreferenceModelServiceService, Stage } from '@rlhf/proto';
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
import { defaultPreferenceLimits, type PreferenceLimits } from './compare-request.js';
import { compareHandler, rankHandler } from './judge-rpcs.js';
import { startPreferenceJudgeWorker } from './judge-worker.js';
import { PreferenceJudge } from './preference-judge.js';
import { preferenceTrainingImplementation } from './train-rpcs.js';
import { preferenceUtf8Schemas } from './utf8-schemas.js';

export { defaultPreferenceLimits, type PreferenceLimits } from './compare-request.js';
export { PreferenceJudge, rewardsFromRanking } from './preference-judge.js';

/** The stage the preference-model's training worker serves. */
export const preferenceTrainingStages = { [Stage.STAGE_PREFERENCE_MODEL]: 'pm' } as const;

export interface PreferenceModelServiceOptions {
  limits?: Partial<PreferenceLimits>;
  /** Training jobs (TrainPreferenceModel and PREFERENCE_MODEL shards): work directory, checkpoints, queue. */
  training?: TrainingRuntimeOptions & { limits?: Partial<TrainLimits> };
  /** Serve PREFERENCE_MODEL shards over NATS when the process has a NATS connection. Default true. */
  trainWorker?: boolean;
  /** The training worker's redelivery timeout (it heartbeats every third of it). Default 30 s. */
  ackWaitMs?: number;
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
  training: TrainingRuntime;
}

const summary =
  'Judges P(a > b) with a pairwise preference model, debiased over both orders; ranks by tournament; trains preference models.';

/** The preference-model service with the given limits (the `rlhf serve` default uses none). */
export function createPreferenceModelService(options: PreferenceModelServiceOptions = {}): ServiceModule {
  const limits: PreferenceLimits = { ...defaultPreferenceLimits, ...options.limits };
  const batching = { windowMs: 2, maxBatchComparisons: 32, ...options.batching };
  const trainLimits: TrainLimits = { ...defaultTrainLimits, ...options.training?.limits };
  const cacheDir = options.cacheDir ?? process.env.RLHF_MODEL_CACHE ?? join(tmpdir(), 'rlhf-model-cache');
  const states = new WeakMap<ServiceContext, State>();
  const stateOf = (ctx: ServiceContext): State => {
    let s = states.get(ctx);
    if (!s) {
      const store = new ArtifactRouter(ctx.nats);
      const cache = new ModelCache({ store, cacheDir });
      const training = createTrainingRuntime(
        ctx,
        'preference-model',
        { cacheDir, ...options.training },
        store,
      );
      s = { store, cache, judge: new PreferenceJudge(cache, batching, ctx.metrics), training };
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
          // String fields are checked for invalid UTF-8 in the raw bytes (service-kit utf8-fields.ts).
          definition: withUtf8Checks(
            PreferenceModelServiceService as unknown as grpc.ServiceDefinition,
            preferenceUtf8Schemas,
          ),
          implementation: {
            compare: unary('Compare', deps, compareHandler(s.judge, limits)),
            rank: unary('Rank', deps, rankHandler(s.judge, limits)),
            ...preferenceTrainingImplementation({ ...deps, rt: s.training, limits: trainLimits }),
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
      const trainers: RunningWorker[] =
        ctx.nats && options.trainWorker !== false
          ? await startTrainWorkers({
              nats: ctx.nats,
              logger: ctx.logger,
              rt: s.training,
              stages: preferenceTrainingStages,
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
        // In-flight calls finish on the models before they are released.
        await s.judge.idle();
        await s.cache.close();
      };
    },
  };
}

/**
 * Judges P(a > b) with a pairwise preference model, debiased over both orders; ranks by tournament; trains
 * preference models. With NATS, also judges JUDGE shards of the preference type and trains
 * PREFERENCE_MODEL shards.
 */
export const preferenceModelService: ServiceModule = createPreferenceModelService();
