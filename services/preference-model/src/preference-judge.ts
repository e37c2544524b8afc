/**
 * Preference judgements on a loaded PM: debiased comparisons (concurrent Compare calls batched into shared
 * forward passes), rankings by tournament or round robin, and the checks that need the model — that it is a
 * preference model at all (`A` and `B` are single tokens), and that a comparison fits its context.
 */
import {
  answerIds,
  type Comparison,
  comparePairs,
  preferencePrompt,
  type Ranking,
  rankRoundRobin,
  rankTournament,
} from '@rlhf/ml-engine';
import { invalidArgument, RlhfError } from '@rlhf/platform';
import type { ModelRef } from '@rlhf/proto';
import { type LoadedModel, loadModelRef, MicroBatcher, type ModelCache } from '@rlhf/service-kit';
import { Histogram, type Registry } from 'prom-client';

export interface Triple {
  prompt: string;
  a: string;
  b: string;
}

/** A text field of the request and its value, for naming the one at fault. */
export interface NamedText {
  field: string;
  text: string;
}

export class PreferenceJudge {
  private readonly batchers = new WeakMap<LoadedModel, MicroBatcher<Triple, Comparison>>();
  private readonly batchSizes: Histogram;
  private active = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly cache: ModelCache,
    private readonly batching: { windowMs: number; maxBatchComparisons: number },
    registry: Registry,
  ) {
    this.batchSizes = new Histogram({
      name: 'rlhf_preference_batch_comparisons',
      help: 'Compare calls sharing one forward pass (each scored in both orders)',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    });
  }

  /** Loads the preference model a request names, refusing a model that cannot answer A or B. */
  async model(ref: ModelRef | undefined, field = 'model'): Promise<LoadedModel> {
    const loaded = await loadModelRef(this.cache, ref, 'lm', field);
    try {
      answerIds(loaded.model.tokenizer);
    } catch {
      throw new RlhfError(
        'FAILED_PRECONDITION',
        `${loaded.uri} is not a preference model: its tokenizer does not encode "A" and "B" as one token each`,
        {
          field: `${field}.uri`,
          fix: 'pass a model trained with objective PREFERENCE_MODEL (StartTrainingJob, or `rlhf train pm`)',
        },
      );
    }
    return loaded;
  }

  /**
   * INVALID_ARGUMENT naming the longest text when the longest comparison among `prompt` and the two
   * longest responses does not fit the model's context.
   */
  checkFits(model: LoadedModel, prompt: NamedText, responses: readonly NamedText[]): void {
    const [x, y] = [...responses].sort((p, q) => q.text.length - p.text.length);
    if (!x || !y) return;
    const tok = model.model.tokenizer;
    const max = model.model.config.max_position_embeddings;
    const tokens = Math.max(
      1 + tok.encode(preferencePrompt(prompt.text, x.text, y.text)).length,
      1 + tok.encode(preferencePrompt(prompt.text, y.text, x.text)).length,
    );
    if (tokens > max) {
      const longest = [prompt, x, y].sort((p, q) => q.text.length - p.text.length)[0] as NamedText;
      throw invalidArgument(
        longest.field,
        `the comparison takes ${tokens} tokens, more than the model's ${max} positions`,
        'shorten the prompt or the responses, or use a preference model with more positions (max_position_embeddings; spec.setup.model.maxPositionEmbeddings for one a run trains), since it reads the prompt and both responses at once',
      );
    }
  }

  /** P(a > b) debiased over both orders, batched with concurrent callers. */
  compare(model: LoadedModel, triple: Triple, signal?: AbortSignal): Promise<Comparison> {
    return this.track(this.batcherFor(model).submit(triple, signal));
  }

  rank(
    model: LoadedModel,
    prompt: string,
    responses: string[],
    method: 'tournament' | 'round-robin',
  ): Promise<Ranking> {
    // A ranking is several runs: the session stays loaded until the last (shared-session.ts).
    const release = model.session.hold();
    return this.track(
      (method === 'tournament'
        ? rankTournament(model.model, model.session, prompt, responses)
        : rankRoundRobin(model.model, model.session, prompt, responses)
      ).finally(release),
    );
  }

  /** Resolves once no judgement is running (before the models are released on shutdown). */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async track<T>(work: Promise<T>): Promise<T> {
    this.active++;
    try {
      return await work;
    } finally {
      if (--this.active === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private batcherFor(model: LoadedModel): MicroBatcher<Triple, Comparison> {
    let b = this.batchers.get(model);
    if (!b) {
      b = new MicroBatcher<Triple, Comparison>({
        windowMs: this.batching.windowMs,
        maxBatchSize: this.batching.maxBatchComparisons,
        sizeOf: () => 1,
        onBatch: ({ requests }) => this.batchSizes.observe(requests),
        run: (triples) => {
          const release = model.session.hold();
          return comparePairs(model.model, model.session, triples).finally(release);
        },
      });
      this.batchers.set(model, b);
    }
    return b;
  }
}

/** Judged rewards from a ranking: n - 1 - position, so the best gets n - 1 and the worst 0. */
export function rewardsFromRanking(ranking: readonly number[]): number[] {
  const n = ranking.length;
  const rewards = new Array<number>(n).fill(0);
  ranking.forEach((index, position) => {
    rewards[index] = n - 1 - position;
  });
  return rewards;
}
