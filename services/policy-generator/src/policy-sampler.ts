/**
 * Sampling behind one queue per loaded policy: concurrent callers (Generate and GenerateStream calls, and
 * GENERATE shards) are batched dynamically into shared generation passes with the KV cache. Each request
 * keeps its own settings (seed, temperature, top-k/p, max_new_tokens, stops) inside the shared batch, and
 * each of its rows draws from its own random stream keyed by (seed, global prompt index, sample index), so a
 * seeded request samples the same tokens whether it ran alone or batched with others.
 */
import { type GenerateRequest as EngineRequest, generate, type Sample } from '@rlhf/ml-engine';
import { type Logger, parseIntegerIn, parseNumberIn, RlhfError } from '@rlhf/platform';
import type { ModelRef } from '@rlhf/proto';
import { type LoadedModel, loadModelRef, MicroBatcher, type ModelCache } from '@rlhf/service-kit';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { type GeneratedCompletion, stopStringsHook, toCompletion } from './completions.js';
import type { SamplingSettings } from './sampling-settings.js';

export interface BatchingOptions {
  /** How long an idle policy waits for more requests before it starts a batch. */
  windowMs: number;
  /** Completions (rows) per generation pass. */
  maxBatchCompletions: number;
}

/**
 * A generation pass takes tens of milliseconds or more, so an idle policy waiting 5 ms for company costs
 * little, and it keeps clients that got their answers together (and ask again together) in one batch
 * rather than splitting them into a small first batch and the rest, which then waits a whole pass.
 */
export const defaultBatching: BatchingOptions = { windowMs: 5, maxBatchCompletions: 64 };

/** Batching set by the environment: RLHF_GENERATE_BATCH_WINDOW_MS and RLHF_GENERATE_MAX_BATCH. */
export function batchingFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<BatchingOptions> {
  const out: Partial<BatchingOptions> = {};
  const window = env.RLHF_GENERATE_BATCH_WINDOW_MS;
  if (window) out.windowMs = parseNumberIn(window, 'RLHF_GENERATE_BATCH_WINDOW_MS', 0, 1000);
  const max = env.RLHF_GENERATE_MAX_BATCH;
  if (max) out.maxBatchCompletions = parseIntegerIn(max, 'RLHF_GENERATE_MAX_BATCH', 1, 4096);
  return out;
}

/** One request's work: prompts (BOS included), samples each, and its settings. */
export interface SampleJob {
  prompts: readonly number[][];
  n: number;
  /** Global index of prompts[0] in its dataset (the RNG streams are keyed by first + i). */
  firstPromptIndex: number;
  sampling: SamplingSettings;
  /** Aborted when the caller goes away: dropped from the queue, or its rows stop mid-batch. */
  signal?: AbortSignal;
  /** Each completion as soon as it is finished (completion order); `prompt` is 0-based in this job. */
  onCompletion?(prompt: number, sample: number, completion: GeneratedCompletion): void;
}

interface Queued {
  rows: EngineRequest[];
  size: number;
}

interface GenerateMetrics {
  tokens: Counter;
  completions: Counter;
  batchCompletions: Histogram;
  batchRequests: Histogram;
  batchSeconds: Histogram;
  queued: Gauge;
}

function generateMetrics(registry: Registry): GenerateMetrics {
  return {
    tokens: new Counter({
      name: 'rlhf_generate_tokens_total',
      help: 'Tokens generated (rate() gives tokens/s)',
      registers: [registry],
    }),
    completions: new Counter({
      name: 'rlhf_generate_completions_total',
      help: 'Completions generated',
      registers: [registry],
    }),
    batchCompletions: new Histogram({
      name: 'rlhf_generate_batch_completions',
      help: 'Completions (rows) sharing one batched generation pass',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [registry],
    }),
    batchRequests: new Histogram({
      name: 'rlhf_generate_batch_requests',
      help: 'Requests (Generate calls or shard chunks) sharing one batched generation pass',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: 'rlhf_generate_batch_seconds',
      help: 'Wall time of one batched generation pass',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    queued: new Gauge({
      name: 'rlhf_generate_queue_depth',
      help: 'Generation requests waiting for a batch',
      registers: [registry],
    }),
  };
}

export class PolicySampler {
  private readonly batchers = new WeakMap<LoadedModel, MicroBatcher<Queued, Sample[]>>();
  private readonly metrics: GenerateMetrics;
  private waiting = 0;
  private active = 0;
  private closing = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly cache: ModelCache,
    private readonly batching: BatchingOptions,
    registry: Registry,
    private readonly logger: Logger,
  ) {
    this.metrics = generateMetrics(registry);
  }

  get options(): BatchingOptions {
    return this.batching;
  }

  /** Loads (or finds) the policy a request names; errors name `<field>.uri` / `<field>.digest`. */
  model(ref: ModelRef | undefined, field = 'model'): Promise<LoadedModel> {
    return loadModelRef(this.cache, ref, 'lm', field);
  }

  /**
   * Runs `fn` as one unit of work that idle() waits for (a call from its checks to its reply). Once the
   * sampler is closing, new work is refused UNAVAILABLE so a draining server finishes what it has.
   */
  async track<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closing)
      throw new RlhfError('UNAVAILABLE', 'the server is shutting down', { fix: 'retry on another replica' });
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.wakeIfIdle();
    }
  }

  /** Completions of every prompt, by prompt then sample index. */
  async generate(model: LoadedModel, job: SampleJob): Promise<GeneratedCompletion[][]> {
    const tok = model.model.tokenizer;
    const s = job.sampling;
    const stopWhen = stopStringsHook(tok, s.stop);
    const signal = job.signal;
    const onCompletion = job.onCompletion;
    const rows: EngineRequest[] = job.prompts.map((promptIds, i) => ({
      promptIds,
      n: job.n,
      promptIndex: job.firstPromptIndex + i,
      options: {
        seed: s.seed,
        temperature: s.temperature,
        topP: s.topP,
        topK: s.topK,
        greedy: s.greedy,
        maxNewTokens: s.maxNewTokens,
        stopIds: s.stopIds,
        ...(stopWhen ? { stopWhen } : {}),
        ...(signal ? { cancelled: () => signal.aborted } : {}),
        ...(onCompletion
          ? {
              onSample: (sample: Sample) =>
                onCompletion(
                  sample.promptIndex - job.firstPromptIndex,
                  sample.sampleIndex,
                  toCompletion(tok, sample, s.stop),
                ),
            }
          : {}),
      },
    }));
    this.metrics.queued.set(++this.waiting);
    let samples: Sample[];
    try {
      samples = await this.batcherFor(model).submit({ rows, size: rows.length * job.n }, signal);
    } finally {
      this.metrics.queued.set(--this.waiting);
      this.wakeIfIdle();
    }
    // A call whose deadline passed (or that was cancelled) mid-batch has rows cut short: drop its result.
    signal?.throwIfAborted();
    return job.prompts.map((_, i) =>
      samples.slice(i * job.n, (i + 1) * job.n).map((sample) => toCompletion(tok, sample, s.stop)),
    );
  }

  /** Refuses new work from now on. */
  close(): void {
    this.closing = true;
  }

  /** Resolves once no call or batch is queued or running (before the models are released on shutdown). */
  idle(): Promise<void> {
    if (this.waiting === 0 && this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIfIdle(): void {
    if (this.waiting === 0 && this.active === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private batcherFor(model: LoadedModel): MicroBatcher<Queued, Sample[]> {
    let b = this.batchers.get(model);
    if (!b) {
      const tok = model.model.tokenizer;
      const maxBatch = Math.max(1, this.batching.maxBatchCompletions);
      b = new MicroBatcher<Queued, Sample[]>({
        windowMs: this.batching.windowMs,
        maxBatchSize: maxBatch,
        sizeOf: (q) => q.size,
        onBatch: ({ requests, size }) => {
          this.metrics.batchRequests.observe(requests);
          this.metrics.batchCompletions.observe(size);
        },
        run: async (batch) => {
          const started = performance.now();
          const all = await generate(
            model.session,
            model.model.config,
            batch.flatMap((q) => q.rows),
            {
              // Every row carries its request's settings; these are only the engine's fallbacks.
              temperature: 1,
              topP: 1,
              topK: 0,
              greedy: false,
              maxNewTokens: 1,
              seed: 0,
              eosId: tok.eosId,
              padId: tok.padId,
              maxBatch,
            },
          );
          const seconds = (performance.now() - started) / 1000;
          const tokens = all.reduce((n, s) => n + s.tokenIds.length, 0);
          this.metrics.tokens.inc(tokens);
          this.metrics.completions.inc(all.length);
          this.metrics.batchSeconds.observe(seconds);
          this.logger.debug(
            { model: model.uri, requests: batch.length, completions: all.length, tokens, seconds },
            'generation batch done',
          );
          let k = 0;
          return batch.map((q) => {
            const mine = all.slice(k, k + q.size);
            k += q.size;
            return mine;
          });
        },
      });
      this.batchers.set(model, b);
    }
    return b;
  }
}
