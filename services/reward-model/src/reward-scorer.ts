/**
 * Reward scoring behind one queue per loaded model: concurrent callers (gRPC Score calls and JUDGE shards)
 * are batched dynamically into shared forward passes. The penalty is applied per caller afterwards, so
 * callers with different length penalties still share a batch.
 */
import { type ScoreInput, scoreResponses } from '@rlhf/ml-engine';
import { parseIntegerIn, parseNumberIn } from '@rlhf/platform';
import type { ModelRef, ScoreResult } from '@rlhf/proto';
import { type LoadedModel, loadModelRef, MicroBatcher, type ModelCache } from '@rlhf/service-kit';
import { Gauge, Histogram, type Registry } from 'prom-client';

export interface BatchingOptions {
  /** How long an idle model waits for more requests before it runs a batch. */
  windowMs: number;
  /** Responses per forward pass. */
  maxBatchResponses: number;
}

export const defaultBatching: BatchingOptions = { windowMs: 0, maxBatchResponses: 64 };

/** Batching set by the environment: RLHF_SCORE_BATCH_WINDOW_MS and RLHF_SCORE_MAX_BATCH. */
export function batchingFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<BatchingOptions> {
  const out: Partial<BatchingOptions> = {};
  const window = env.RLHF_SCORE_BATCH_WINDOW_MS;
  if (window) out.windowMs = parseNumberIn(window, 'RLHF_SCORE_BATCH_WINDOW_MS', 0, 1000);
  const max = env.RLHF_SCORE_MAX_BATCH;
  if (max) out.maxBatchResponses = parseIntegerIn(max, 'RLHF_SCORE_MAX_BATCH', 1, 4096);
  return out;
}

interface ScoreBatchMetrics {
  responses: Histogram;
  requests: Histogram;
  queued: Gauge;
}

function scoreMetrics(registry: Registry): ScoreBatchMetrics {
  return {
    responses: new Histogram({
      name: 'rlhf_reward_batch_responses',
      help: 'Responses scored per forward pass',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
    requests: new Histogram({
      name: 'rlhf_reward_batch_requests',
      help: 'Requests (Score calls or judge chunks) sharing one forward pass',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    }),
    queued: new Gauge({
      name: 'rlhf_reward_queue_depth',
      help: 'Scoring requests waiting for a forward pass',
      registers: [registry],
    }),
  };
}

/** chars(y): Unicode code points, as the proto's length penalty counts them. */
export function charCount(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

export class RewardScorer {
  private readonly batchers = new WeakMap<LoadedModel, MicroBatcher<ScoreInput[], number[][]>>();
  private readonly metrics: ScoreBatchMetrics;
  private waiting = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly cache: ModelCache,
    private readonly batching: BatchingOptions,
    registry: Registry,
  ) {
    this.metrics = scoreMetrics(registry);
  }

  /** Loads (or finds) the reward model a request names; errors name `<field>.uri` / `<field>.digest`. */
  model(ref: ModelRef | undefined, field = 'model'): Promise<LoadedModel> {
    return loadModelRef(this.cache, ref, 'scalar', field);
  }

  /** Raw rewards of each item's responses, from forward passes shared with concurrent callers. */
  async rewards(model: LoadedModel, items: ScoreInput[], signal?: AbortSignal): Promise<number[][]> {
    this.metrics.queued.set(++this.waiting);
    try {
      return await this.batcherFor(model).submit(items, signal);
    } finally {
      this.metrics.queued.set(--this.waiting);
      if (this.waiting === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /** Resolves once no scoring is queued or running (before the models are released on shutdown). */
  idle(): Promise<void> {
    if (this.waiting === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Rewards, penalised rewards and lengths, as ScoreResult messages in item order. */
  async score(
    model: LoadedModel,
    items: ScoreInput[],
    lengthPenalty: number,
    signal?: AbortSignal,
  ): Promise<ScoreResult[]> {
    const rewards = await this.rewards(model, items, signal);
    return items.map((item, i) => {
      const lengths = item.responses.map(charCount);
      const raw = rewards[i] as number[];
      return {
        rewards: raw,
        penalizedRewards: raw.map((r, j) => r - lengthPenalty * (lengths[j] as number)),
        lengths,
      };
    });
  }

  private batcherFor(model: LoadedModel): MicroBatcher<ScoreInput[], number[][]> {
    let b = this.batchers.get(model);
    if (!b) {
      b = new MicroBatcher<ScoreInput[], number[][]>({
        windowMs: this.batching.windowMs,
        maxBatchSize: this.batching.maxBatchResponses,
        sizeOf: (items) => items.reduce((n, it) => n + it.responses.length, 0),
        onBatch: ({ requests, size }) => {
          this.metrics.requests.observe(requests);
          this.metrics.responses.observe(size);
        },
        run: async (requests) => {
          const all = requests.flat();
          // One batch may be several runs: the session stays loaded until the last (shared-session.ts).
          const release = model.session.hold();
          const scored = await scoreResponses(
            model.model,
            model.session,
            all,
            0,
            Math.max(1, this.batching.maxBatchResponses),
          ).finally(release);
          let k = 0;
          return requests.map((items) => items.map(() => (scored[k++] as { rewards: number[] }).rewards));
        },
      });
      this.batchers.set(model, b);
    }
    return b;
  }
}
