/**
 * vLLM's `prompt_logprobs`, and the prompt half of `echo` with `logprobs`: the model's log-prob of each
 * prompt token given the tokens before it (none for the first), with its rank in the vocabulary and the k
 * most likely tokens at that position. The same quantity as the sampled tokens' log-probs: log-softmax at
 * temperature 1, before top-k and top-p, over the ids the sampler may pick (a padded vocabulary's extra ids
 * left out). One run of the model's own inference session over each prompt, as a prefill with an empty KV
 * cache: its logits cover every position, and the weights are the ones the sampler holds (no second copy).
 */
import { cacheNames, headDim, type TensorValue, type TokenLogprob, topLogprobs } from '@rlhf/ml-engine';
import type { LoadedModel } from '@rlhf/service-kit';

export interface PromptTokenLogprob {
  logprob: number;
  /** 1 + the number of ids with a larger logit (vLLM's rank). */
  rank: number;
  /** The k most likely ids at this position, highest first. */
  top: TokenLogprob[];
}

/** For each prompt, entries for ids[1..] in order (length ids.length - 1). */
export async function promptLogprobs(
  model: LoadedModel,
  prompts: readonly number[][],
  k: number,
): Promise<PromptTokenLogprob[][]> {
  const { config, tokenizer } = model.model;
  const vocab = config.vocab_size;
  const width = Math.min(tokenizer.vocabSize, vocab);
  const names = cacheNames(config.num_hidden_layers);
  const release = model.session.hold();
  try {
    const out: PromptTokenLogprob[][] = [];
    // One prompt a run: no padding, so each position sees exactly its prefix.
    for (const ids of prompts) {
      const seq = ids.length;
      const dims = [1, seq];
      const feeds: Record<string, TensorValue> = {
        input_ids: { data: BigInt64Array.from(ids, (id) => BigInt(id)), dims },
        attention_mask: { data: new BigInt64Array(seq).fill(1n), dims },
        position_ids: { data: BigInt64Array.from(ids, (_, t) => BigInt(t)), dims },
      };
      for (const name of names.past)
        feeds[name] = {
          data: new Float32Array(0),
          dims: [1, config.num_key_value_heads, 0, headDim(config)],
        };
      const r = await model.session.run(feeds, ['logits']);
      const logits = r.logits?.data as Float32Array;
      const rows: PromptTokenLogprob[] = [];
      for (let t = 1; t < seq; t++) {
        const offset = (t - 1) * vocab;
        const id = ids[t] as number;
        rows.push(tokenAt(logits, offset, width, id, k));
      }
      out.push(rows);
    }
    return out;
  } finally {
    release();
  }
}

/** Token `id`'s log-prob, rank and the row's top k, from one row of logits (`width` ids). */
function tokenAt(
  logits: Float32Array,
  offset: number,
  width: number,
  id: number,
  k: number,
): PromptTokenLogprob {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < width; i++) max = Math.max(max, logits[offset + i] as number);
  let sum = 0;
  let above = 0;
  // An id the sampler never picks (past the tokenizer) has probability 0 there, as it would when sampled.
  const own = id < width ? (logits[offset + id] as number) : Number.NEGATIVE_INFINITY;
  for (let i = 0; i < width; i++) {
    const x = logits[offset + i] as number;
    sum += Math.exp(x - max);
    if (x > own) above++;
  }
  const lse = max + Math.log(sum);
  return { logprob: own - lse, rank: above + 1, top: k > 0 ? topLogprobs(logits, offset, width, k) : [] };
}
