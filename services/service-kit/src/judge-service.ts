/**
 * The shell the two judging model services share (reward model, preference model): per host context one
 * artifact store, one model cache, the service's judge (the object that batches calls onto the cached
 * models) and a training runtime; gRPC bindings with UTF-8 checks (the judge's service, and
 * TrainingJobsService for its training objective); shard handlers for JUDGE shards of the service's judge
 * type and for its training stage (served by NATS workers when connected); and the stop order. A service
 * supplies what differs: its names, its gRPC definition, its judge and handlers.
 */
import type * as grpc from '@grpc/grpc-js';
import type { TrainObjective } from '@rlhf/ml-engine';
import type { ArtifactStore, ServiceContext } from '@rlhf/platform';
import type { Stage } from '@rlhf/proto';
import type { HandlerDeps } from './grpc-handlers.js';
import { ModelCache } from './model-cache.js';
import { defaultModelCacheDir } from './model-download-cache.js';
import { artifactStoreOf } from './service-store.js';
import {
  type ShardHandler,
  type StageServiceModule,
  stageWorkNats,
  startShardWorkers,
} from './shard-handler.js';
import type { RunningWorker } from './stage-worker.js';
import { trainingJobsBinding, trainingJobsServiceName } from './training-jobs-service.js';
import {
  createTrainingRuntime,
  type TrainingRuntime,
  type TrainingRuntimeOptions,
  trainShardHandlers,
} from './training-service.js';
import { type WireSchema, withUtf8Checks } from './utf8-fields.js';

/** What every judging service serves besides its calls: in-flight work it can wait for. */
export interface Judge {
  /** Resolves once the calls and batches in flight have finished. */
  idle(): Promise<void>;
}

/** The options a judging service's users set (`createRewardModelService(options)` and the like). */
export interface JudgeServiceOptions {
  /** Training jobs (TrainingJobsService and the training stage's shards): work directory, checkpoints, queue. */
  training?: TrainingRuntimeOptions;
  /** Serve the training stage's shards over NATS when the process has a NATS connection. Default true. */
  trainWorker?: boolean;
  /** The training worker's redelivery timeout (it heartbeats every third of it). Default 30 s. */
  ackWaitMs?: number;
  /** Where models fetched from the Object Store are unpacked. Default $RLHF_MODEL_CACHE or the temp dir. */
  cacheDir?: string;
  /** Serve JUDGE shards of the service's judge type over NATS when connected. Default true. */
  judgeWorker?: boolean;
}

/** What a judging service is made of. */
export interface JudgeServiceSpec<J extends Judge> {
  /** The name users type: `rlhf serve <name>`; also the training runtime's name. */
  name: string;
  summary: string;
  /** The judge's service, fully qualified, e.g. `rlhf.v1.RewardModelService`. */
  grpcServiceName: string;
  definition: grpc.ServiceDefinition;
  /** Which string fields of which requests are checked for invalid UTF-8 (service-kit utf8-fields.ts). */
  utf8Schemas: Record<string, WireSchema>;
  /**
   * The stage the training worker serves, and the objective it trains; TrainingJobsService runs the same
   * objectives over gRPC.
   */
  trainingStages: Partial<Record<Stage, TrainObjective>>;
  createJudge(cache: ModelCache, ctx: ServiceContext): J;
  /** The implementation of the judge rpcs (Score; Compare and Rank). */
  judgeRpcs(judge: J, deps: HandlerDeps): grpc.UntypedServiceImplementation;
  /** The shard handler of JUDGE shards of the service's judge type. */
  judgeHandler(o: { store: ArtifactStore; judge: J }): ShardHandler;
}

interface State<J> {
  store: ArtifactStore;
  cache: ModelCache;
  judge: J;
  training: TrainingRuntime;
}

export function createJudgeService<J extends Judge>(
  spec: JudgeServiceSpec<J>,
  options: JudgeServiceOptions = {},
): StageServiceModule {
  const cacheDir = options.cacheDir ?? defaultModelCacheDir();
  const states = new WeakMap<ServiceContext, State<J>>();
  const stateOf = (ctx: ServiceContext): State<J> => {
    let s = states.get(ctx);
    if (!s) {
      const store = artifactStoreOf(ctx);
      const cache = new ModelCache({
        store,
        cacheDir,
        ...(ctx.modelCacheMaxBytes === undefined ? {} : { cacheMaxBytes: ctx.modelCacheMaxBytes }),
        logger: ctx.logger,
      });
      const training = createTrainingRuntime(ctx, spec.name, { cacheDir, ...options.training }, store);
      s = { store, cache, judge: spec.createJudge(cache, ctx), training };
      states.set(ctx, s);
    }
    return s;
  };

  const judgeHandlers = (s: State<J>): ShardHandler[] =>
    options.judgeWorker !== false ? [spec.judgeHandler({ store: s.store, judge: s.judge })] : [];
  const trainHandlers = (s: State<J>): ShardHandler[] =>
    options.trainWorker !== false
      ? trainShardHandlers({ rt: s.training, stages: spec.trainingStages, limits: s.training.limits })
      : [];

  return {
    name: spec.name,
    summary: spec.summary,
    grpcServiceNames: [spec.grpcServiceName, trainingJobsServiceName],
    bindings: (ctx) => {
      const s = stateOf(ctx);
      const deps = { logger: ctx.logger, metrics: ctx.metrics };
      return [
        {
          name: spec.grpcServiceName,
          definition: withUtf8Checks(spec.definition, spec.utf8Schemas),
          implementation: spec.judgeRpcs(s.judge, deps),
        },
        trainingJobsBinding(deps, s.training, Object.values(spec.trainingStages)),
      ];
    },
    shardHandlers: (ctx) => {
      const s = stateOf(ctx);
      return [...judgeHandlers(s), ...trainHandlers(s)];
    },
    start: async (ctx) => {
      const s = stateOf(ctx);
      const nats = stageWorkNats(ctx);
      const judges: RunningWorker[] = nats
        ? await startShardWorkers({ nats, logger: ctx.logger, handlers: judgeHandlers(s) })
        : [];
      const trainers: RunningWorker[] = nats
        ? await startShardWorkers({
            nats,
            logger: ctx.logger,
            handlers: trainHandlers(s),
            ...(options.ackWaitMs === undefined ? {} : { ackWaitMs: options.ackWaitMs }),
          })
        : [];
      return async () => {
        // Training jobs are cancelled first (their checkpoints kept), so a shard in hand is handed back
        // after one step rather than holding the stop until it finishes.
        await s.training.jobs.close();
        await Promise.all(trainers.map((w) => w.stop()));
        await Promise.all(judges.map((w) => w.stop()));
        // In-flight calls finish on the models before they are released.
        await s.judge.idle();
        await s.cache.close();
      };
    },
  };
}
