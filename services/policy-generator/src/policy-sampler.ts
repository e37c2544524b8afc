/**
 * Sampling through one continuously batched decode loop per loaded policy: the rows of concurrent callers
 * (Generate and GenerateStream calls, and GENERATE shards) share a running batch with the KV cache, joining
 * it at the next decode step and leaving it as soon as they finish, so a call never waits for another call's
 * whole generation. Each request keeps its own settings (seed, temperature, top-k/p, max_new_tokens, stops)
 * inside the shared batch, and each of its rows draws from its own random stream keyed by (seed, global
 * prompt index, sample index), so a seeded request samples the same tokens whether it ran alone or batched
 * with others, joining a running batch at any step (log-probs agree to float32 rounding: padding and batch
 * size change ORT's summation order; see the engine's decode-loop.ts).
 */
import {
  DecodeLoop,
  type GenerateRequest as EngineRequest,
  type RowDefaults,
  type Sample,
  type StepInfo,
} from '@rlhf/ml-engine';
import { type Logger, parseIntegerIn, parseNumberIn, RlhfError } from '@rlhf/platform';
import type { ModelRef } from '@rlhf/proto';
import { type LoadedModel, loadModelRef, type ModelCache } from '@rlhf/service-kit';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { type GeneratedCompletion, stopStringsHook, toCompletion } from './completions.js';
import type { SamplingSettings } from './sampling-settings.js';

export interface BatchingOptions {
  /** How long an idle policy waits for more requests before its first decode step. */
  windowMs: number;
  /** Completions (rows) in the running batch at most; the rest wait, first come first served. */
  maxBatchCompletions: number;
}

/**
 * Requests join a running batch at the next step anyway; the window only matters when the policy is idle,
 * where waiting 5 ms for company lets clients that got their answers together (and ask again together)
 * share their prefill run and their steps from the start.
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

/** One request's work: prompt rows (as prompt-ids.ts builds them), samples each, and its settings. */
export interface SampleJob {
  prompts: readonly number[][];
  n: number;
  /** Global index of prompts[0] in its dataset (the RNG streams are keyed by first + i). */
  firstPromptIndex: number;
  sampling: SamplingSettings;
  /** Aborted when the caller goes away: its waiting rows are dropped, its running rows stop at the next step. */
  signal?: AbortSignal;
  /** Each completion as soon as it is finished (completion order); `prompt` is 0-based in this job. */
  onCompletion?(prompt: number, sample: number, completion: GeneratedCompletion): void;
  /** Alternatives to record per sampled token (GeneratedCompletion.topLogprobs); 0 or unset: none. */
  topLogprobs?: number;
  /**
   * After each token a row takes, with the engine's sample so far (see the engine's RequestOptions.onToken:
   * a row may take the same tokens again after the row loop gives it back).
   */
  onToken?(prompt: number, sample: number, so: Sample, done: boolean): void;
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
      help: 'Completions (rows) in one decode step of the running batch',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [registry],
    }),
    batchRequests: new Histogram({
      name: 'rlhf_generate_batch_requests',
      help: 'Requests (Generate calls or shard chunks) with rows in one decode step',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: 'rlhf_generate_batch_seconds',
      help: 'Wall time of one decode step (with the prefill of the rows joining at it); a lone row on the row loop decodes up to 16 tokens in one',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    queued: new Gauge({
      name: 'rlhf_generate_queue_depth',
      help: 'Completions (rows) waiting to join the running batch',
      registers: [registry],
    }),
  };
}

/** Every row carries its request's settings; these are only the engine's fallbacks. */
const engineDefaults: RowDefaults = {
  temperature: 1,
  topP: 1,
  topK: 0,
  greedy: false,
  maxNewTokens: 1,
  seed: 0,
};

export class PolicySampler {
  private readonly loops = new WeakMap<LoadedModel, DecodeLoop>();
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
    const onToken = job.onToken;
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
        endIds: model.model.endTokenIds ?? [],
        ...(stopWhen ? { stopWhen } : {}),
        ...(job.topLogprobs ? { topLogprobs: job.topLogprobs } : {}),
        ...(onToken
          ? {
              onToken: (sample: Sample, done: boolean) =>
                onToken(sample.promptIndex - job.firstPromptIndex, sample.sampleIndex, sample, done),
            }
          : {}),
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
    const loop = this.loopFor(model);
    // The rows take many decode steps: the session stays loaded until they are done (shared-session.ts).
    const release = model.session.hold();
    this.waiting++;
    let samples: Sample[];
    try {
      const submitted = loop.submit(rows, engineDefaults, signal);
      this.metrics.queued.set(loop.waiting);
      samples = await submitted;
    } finally {
      release();
      this.waiting--;
      this.wakeIfIdle();
    }
    // A call whose deadline passed (or that was cancelled) while running has rows cut short: no result.
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

  private loopFor(model: LoadedModel): DecodeLoop {
    let loop = this.loops.get(model);
    if (!loop) {
      const tok = model.model.tokenizer;
      loop = new DecodeLoop(model.session, model.model.config, {
        eosId: tok.eosId,
        padId: tok.padId,
        // Ids past the tokenizer's last decode to nothing: never sampled (padded vocabularies).
        sampleVocab: Math.min(tok.vocabSize, model.model.config.vocab_size),
        maxBatch: Math.max(1, this.batching.maxBatchCompletions),
        windowMs: this.batching.windowMs,
        onStep: (step) => this.observe(model, step),
        ...(model.rowLoop ? { rowLoop: model.rowLoop } : {}),
        onRowLoopError: (err) =>
          this.logger.warn(
            { model: model.uri, err: err instanceof Error ? err.message : String(err) },
            'the row loop failed; lone rows decode one ORT call a token on this model from now on',
          ),
      });
      this.loops.set(model, loop);
    }
    return loop;
  }

  private observe(model: LoadedModel, step: StepInfo): void {
    const m = this.metrics;
    m.tokens.inc(step.tokens);
    m.completions.inc(step.finished);
    if (step.rows > 0) {
      m.batchCompletions.observe(step.rows);
      m.batchRequests.observe(step.requests);
    }
    m.batchSeconds.observe(step.seconds);
    m.queued.set(step.waiting);
    if (step.admitted > 0)
      this.logger.debug(
        {
          model: model.uri,
          joined: step.admitted,
          rows: step.rows,
          requests: step.requests,
          waiting: step.waiting,
        },
        'rows joined the running batch',
      );
  }
}
