import type * as grpc from '@grpc/grpc-js';
import type { ArtifactStore, ServiceContext } from '@rlhf/platform';
import { PolicyGeneratorServiceService } from '@rlhf/proto';
import {
  artifactStoreOf,
  defaultModelCacheDir,
  ModelCache,
  type ShardHandler,
  type StageServiceModule,
  serverStream,
  stageWorkNats,
  startShardWorkers,
  unary,
  withUtf8Checks,
} from '@rlhf/service-kit';
import { evaluateShardHandler } from './evaluate-shard.js';
import { generateHandler, generateStreamHandler } from './generate-rpc.js';
import { generateShardHandler } from './generate-worker.js';
import { startOpenAiServer } from './openai/openai-server.js';
import { type BatchingOptions, batchingFromEnv, defaultBatching, PolicySampler } from './policy-sampler.js';
import { defaultGenerateLimits, type GenerateLimits } from './sampling-settings.js';
import { generatorUtf8Schemas } from './utf8-schemas.js';

export { toCompletion } from './completions.js';
export { evaluateShard, evaluateShardHandler } from './evaluate-shard.js';
export { checkGenerateRequest, prepareGeneration } from './generate-request.js';
export { type GeneratedBatch, runGenerate } from './generate-rpc.js';
export { generateShard, generateShardHandler, isGenerateShard } from './generate-worker.js';
export { type BatchingOptions, batchingFromEnv, PolicySampler, type SampleJob } from './policy-sampler.js';
export {
  checkN,
  checkSamplingParams,
  defaultGenerateLimits,
  type GenerateLimits,
  type SamplingSettings,
  samplingDefaults,
} from './sampling-settings.js';

import { serviceInfo } from './service-info.js';

export interface PolicyGeneratorServiceOptions {
  limits?: Partial<GenerateLimits>;
  /**
   * Dynamic batching; default: RLHF_GENERATE_BATCH_WINDOW_MS / RLHF_GENERATE_MAX_BATCH, else 5 ms and 64
   * completions per pass.
   */
  batching?: Partial<BatchingOptions>;
  /** Where models fetched from the Object Store are unpacked. Default $RLHF_MODEL_CACHE or the temp dir. */
  cacheDir?: string;
  /** Serve GENERATE shards over NATS when the process has a NATS connection. Default true. */
  generateWorker?: boolean;
  /** The stage workers' redelivery timeout (they heartbeat every third of it). Default $RLHF_WORK_ACK_WAIT_MS, else the stage worker's default. */
  ackWaitMs?: number;
}

interface State {
  store: ArtifactStore;
  cache: ModelCache;
  sampler: PolicySampler;
}

/** The policy-generator service with the given limits and batching (the `rlhf serve` default uses none). */
export function createPolicyGeneratorService(
  options: PolicyGeneratorServiceOptions = {},
): StageServiceModule {
  const limits: GenerateLimits = { ...defaultGenerateLimits, ...options.limits };
  const states = new WeakMap<ServiceContext, State>();
  const stateOf = (ctx: ServiceContext): State => {
    let s = states.get(ctx);
    if (!s) {
      const batching: BatchingOptions = { ...defaultBatching, ...batchingFromEnv(), ...options.batching };
      const store = artifactStoreOf(ctx);
      const cache = new ModelCache({
        store,
        cacheDir: options.cacheDir ?? defaultModelCacheDir(),
        ...(ctx.modelCacheMaxBytes === undefined ? {} : { cacheMaxBytes: ctx.modelCacheMaxBytes }),
        logger: ctx.logger,
      });
      s = { store, cache, sampler: new PolicySampler(cache, batching, ctx.metrics, ctx.logger) };
      states.set(ctx, s);
    }
    return s;
  };

  // GENERATE shards, and EVALUATE shards: held-out samples of pi_t with log-probs under pi_0 and their rewards.
  const shardHandlersOf = (s: State): ShardHandler[] =>
    options.generateWorker === false
      ? []
      : [
          generateShardHandler({ store: s.store, sampler: s.sampler, limits }),
          evaluateShardHandler({ store: s.store, cache: s.cache }),
        ];

  return {
    name: serviceInfo.name,
    summary: serviceInfo.summary,
    grpcServiceNames: ['rlhf.v1.PolicyGeneratorService'],
    bindings: (ctx) => {
      const s = stateOf(ctx);
      const deps = { logger: ctx.logger, metrics: ctx.metrics };
      return [
        {
          name: 'rlhf.v1.PolicyGeneratorService',
          // String fields are checked for invalid UTF-8 in the raw bytes (service-kit utf8-fields.ts).
          definition: withUtf8Checks(
            PolicyGeneratorServiceService as unknown as grpc.ServiceDefinition,
            generatorUtf8Schemas,
          ),
          implementation: {
            generate: unary('Generate', deps, generateHandler(s.sampler, limits)),
            generateStream: serverStream('GenerateStream', deps, generateStreamHandler(s.sampler, limits)),
          },
        },
      ];
    },
    shardHandlers: (ctx) => shardHandlersOf(stateOf(ctx)),
    openaiApi: (ctx, o) =>
      startOpenAiServer(
        { sampler: stateOf(ctx).sampler, limits, logger: ctx.logger, metrics: ctx.metrics },
        o,
      ),
    start: async (ctx) => {
      const s = stateOf(ctx);
      const nats = stageWorkNats(ctx);
      const workers = nats
        ? await startShardWorkers({
            nats,
            logger: ctx.logger,
            handlers: shardHandlersOf(s),
            ...(options.ackWaitMs === undefined ? {} : { ackWaitMs: options.ackWaitMs }),
          })
        : [];
      return async () => {
        // Drain: refuse new calls, let each worker finish its shard in hand (acked once stored), let the
        // calls and batches in flight finish, then release the models.
        s.sampler.close();
        await Promise.all(workers.map((w) => w.stop()));
        await s.sampler.idle();
        await s.cache.close();
      };
    },
  };
}

/**
 * Samples n completions per prompt from a policy model, batched with a KV cache (Generate, GenerateStream);
 * with NATS, also generates GENERATE shards.
 */
export const policyGeneratorService: StageServiceModule = createPolicyGeneratorService();
