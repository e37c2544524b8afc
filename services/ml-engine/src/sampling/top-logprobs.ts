/**
 * The k most likely next tokens of one row with their log-probabilities under the model's own distribution
 * (log-softmax at temperature 1, before top-k, top-p or temperature), the quantity the sampled token's
 * log-prob is: vLLM's default ("raw" log-probs) for `logprobs` / `top_logprobs`. A partial selection, not a
 * sort: k is small (OpenAI allows 20) and a vocabulary is tens of thousands of ids.
 */

export interface TokenLogprob {
  token: number;
  logprob: number;
}

/** The most alternatives a request may ask per token (OpenAI's and vLLM's limit). */
export const MAX_TOP_LOGPROBS = 20;

/**
 * The `k` ids of `logits[offset .. offset + vocab)` with the largest logits, highest first (ties: the lower
 * id first, as greedy picks), each with logit minus the row's log-sum-exp over its numbers. NaN logits are
 * never chosen while a number is left to choose.
 */
export function topLogprobs(logits: Float32Array, offset: number, vocab: number, k: number): TokenLogprob[] {
  const want = Math.min(k, vocab);
  if (want <= 0) return [];
  const best: number[] = [];
  const logit = (i: number) => logits[offset + i] as number;
  // NaN ranks below every number: it is kept only while nothing else fills the k places.
  const below = (x: number, y: number) => !Number.isNaN(x) && (Number.isNaN(y) || x > y);
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < vocab; i++) {
    const x = logit(i);
    if (x > max) max = x;
    if (best.length === want && !below(x, logit(best[want - 1] as number))) continue;
    // Insert before the first kept id that ranks lower: earlier (lower) ids win ties.
    let at = best.length;
    while (at > 0 && below(x, logit(best[at - 1] as number))) at--;
    best.splice(at, 0, i);
    if (best.length > want) best.pop();
  }
  let sum = 0;
  for (let i = 0; i < vocab; i++) {
    const x = logit(i);
    if (!Number.isNaN(x)) sum += Math.exp(x - max);
  }
  const lse = max + Math.log(sum);
  return best.map((token) => ({ token, logprob: logit(token) - lse }));
}
