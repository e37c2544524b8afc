/**
 * Picks the next token from one row of logits: temperature, top-k, top-p (nucleus), or greedy. Returns the
 * token and its log-probability under the model's own distribution (temperature 1, no truncation), which
 * is what KL estimates and DPO reference terms need.
 */
import type { Rng } from '../random/rng.js';

export interface SamplingParams {
  /** 0 or `greedy` picks the argmax. */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 keeps every token. */
  topP: number;
  /** Keep the k most likely tokens; 0 keeps every token. */
  topK: number;
  greedy: boolean;
}

export const defaultSamplingParams: SamplingParams = { temperature: 1, topP: 1, topK: 0, greedy: false };

export interface Picked {
  token: number;
  logprob: number;
}

/**
 * A row's next-token distribution at temperature 1 as the inference graph computed it (its
 * `next_token_probs` output): `data[offset .. offset + vocab)`.
 */
export interface RowProbs {
  data: Float32Array;
  offset: number;
}

/** exp(x * scale - max) of the last row logSumExp was asked to keep (sampling is synchronous: one row at a time). */
let rowExps = new Float64Array(0);

/**
 * log(sum(exp(x * scale))) over `x[offset .. offset + n)`; with `keep`, each exp(x_i * scale - max) is left
 * in `rowExps[i]` and the sum of them is returned as well.
 */
function logSumExp(
  x: Float32Array,
  offset: number,
  n: number,
  scale: number,
  keep = false,
): { lse: number; sum: number } {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) max = Math.max(max, (x[offset + i] as number) * scale);
  let sum = 0;
  if (keep) {
    if (rowExps.length < n) rowExps = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const e = Math.exp((x[offset + i] as number) * scale - max);
      rowExps[i] = e;
      sum += e;
    }
  } else {
    for (let i = 0; i < n; i++) sum += Math.exp((x[offset + i] as number) * scale - max);
  }
  return { lse: max + Math.log(sum), sum };
}

/** Token `t` with its log-probability under the model (`modelLse`: log-sum-exp of the row at temperature 1). */
function picked(logits: Float32Array, offset: number, modelLse: number, t: number): Picked {
  return { token: t, logprob: (logits[offset + t] as number) - modelLse };
}

/** The comparator order: logit descending, ties by the lower id. */
function idsByComparator(logits: Float32Array, offset: number, vocab: number): number[] {
  return Array.from({ length: vocab }, (_, i) => i).sort(
    (a, b) => (logits[offset + b] as number) - (logits[offset + a] as number) || a - b,
  );
}

/**
 * Token ids by logit, highest first, ties by the lower id: exactly the comparator order above, from one
 * comparator-free sort of Float64Array keys (2-3x faster). A key is an order-reversing map of the
 * logit's float32 bits times 2^idBits, plus the id: an integer below 2^53, so equal logits keep id order and
 * the id comes back exactly. -0 is keyed as +0, which the comparator treats as equal. A row with a NaN (where
 * the comparator is no order) or a vocabulary over 2^21 ids goes through the comparator itself.
 */
export function idsByLogit(logits: Float32Array, offset: number, vocab: number): ArrayLike<number> {
  const idBits = Math.max(1, Math.ceil(Math.log2(vocab)));
  if (idBits > 21) return idsByComparator(logits, offset, vocab);
  const bits = new Uint32Array(logits.buffer, logits.byteOffset + offset * 4, vocab);
  const idScale = 2 ** idBits;
  const keys = new Float64Array(vocab);
  for (let i = 0; i < vocab; i++) {
    let b = bits[i] as number;
    if ((b & 0x7fffffff) > 0x7f800000) return idsByComparator(logits, offset, vocab);
    if (b === 0x80000000) b = 0;
    // Non-negative floats order like their bits, negative ones reversed; either way a larger logit gets a
    // smaller key, and every non-negative key is below every negative one.
    keys[i] = (b >= 0x80000000 ? b : 0x7fffffff - b) * idScale + i;
  }
  keys.sort();
  const ids = new Int32Array(vocab);
  for (let r = 0; r < vocab; r++) ids[r] = (keys[r] as number) % idScale;
  return ids;
}

/**
 * Inverse-CDF sampling from the graph's own softmax, no exp at all: the first token of positive probability
 * whose running float64 sum of probabilities reaches u times their total (the row loop's graph picks by the
 * same sums, see row-loop-graph.ts). The log-probability is the log of the token's probability (within about
 * 1e-7 of logit minus log-sum-exp), or that difference itself where the float32 probability is too small to
 * carry it.
 */
function sampleFromProbs(
  logits: Float32Array,
  offset: number,
  vocab: number,
  probs: RowProbs,
  rng: Rng,
): Picked | null {
  const q = probs.data;
  const o = probs.offset;
  let total = 0;
  for (let i = 0; i < vocab; i++) total += q[o + i] as number;
  // No positive probability (a NaN row): the exps path decides as it always has, the RNG untouched.
  if (!(total > 0 && total < Number.POSITIVE_INFINITY)) return null;
  const threshold = rng.uniform() * total;
  let running = 0;
  let t = -1;
  for (let i = 0; i < vocab; i++) {
    const w = q[o + i] as number;
    running += w;
    if (w > 0) {
      t = i;
      if (running >= threshold) break;
    }
  }
  return fromProb(logits, offset, vocab, q[o + t] as number, t);
}

/** Token `t` whose graph probability is `w`: log(w), or logit minus log-sum-exp where w is too small. */
function fromProb(logits: Float32Array, offset: number, vocab: number, w: number, t: number): Picked {
  if (w >= MIN_PROB_FOR_LOG) return { token: t, logprob: Math.log(w) };
  return picked(logits, offset, logSumExp(logits, offset, vocab, 1).lse, t);
}

/** Below this a float32 probability's log is too coarse, and the log-probability comes from the logits. */
export const MIN_PROB_FOR_LOG = 1e-30;

/** The first largest logit of the row. */
function argmax(logits: Float32Array, offset: number, vocab: number): number {
  let best = 0;
  for (let i = 1; i < vocab; i++)
    if ((logits[offset + i] as number) > (logits[offset + best] as number)) best = i;
  return best;
}

/**
 * Picks from `logits[offset .. offset + vocab)`. With `probs` (the graph's softmax of the same row), the full
 * distribution at temperature 1 is sampled from those instead of exps computed here, and a greedy pick's
 * log-probability is the log of its probability there; both are what the row loop's graph computes.
 */
export function sampleToken(
  logits: Float32Array,
  offset: number,
  vocab: number,
  p: SamplingParams,
  rng: Rng,
  probs?: RowProbs,
): Picked {
  const greedy = p.greedy || p.temperature === 0;
  const full = !greedy && p.topK === 0 && p.topP >= 1;
  const scale = 1 / p.temperature;
  const fromProbs = full && scale === 1 && probs ? sampleFromProbs(logits, offset, vocab, probs, rng) : null;
  if (fromProbs) return fromProbs;
  if (greedy && probs) {
    const best = argmax(logits, offset, vocab);
    return fromProb(logits, offset, vocab, probs.data[probs.offset + best] as number, best);
  }
  // The full distribution at temperature 1 samples from the exps the model's log-sum-exp computes anyway.
  const model = logSumExp(logits, offset, vocab, 1, full && scale === 1);
  const modelLse = model.lse;
  if (greedy) return picked(logits, offset, modelLse, argmax(logits, offset, vocab));
  if (full) {
    // Inverse-CDF sampling, no sort, over the exps kept by a log-sum-exp pass: the first token whose
    // cumulative weight reaches u times the total. At temperature 1 that pass is the model's own.
    const sum = scale === 1 ? model.sum : logSumExp(logits, offset, vocab, scale, true).sum;
    let u = rng.uniform() * sum;
    for (let i = 0; i < vocab; i++) {
      u -= rowExps[i] as number;
      if (u <= 0) return picked(logits, offset, modelLse, i);
    }
    return picked(logits, offset, modelLse, vocab - 1);
  }
  const order = idsByLogit(logits, offset, vocab);
  const keep = p.topK > 0 ? Math.min(p.topK, vocab) : vocab;
  const max = (logits[offset + (order[0] as number)] as number) * scale;
  const weights: number[] = [];
  let total = 0;
  for (let r = 0; r < keep; r++) {
    const w = Math.exp((logits[offset + (order[r] as number)] as number) * scale - max);
    weights.push(w);
    total += w;
  }
  // Nucleus: the smallest prefix of the sorted tokens whose mass reaches topP.
  let cut = weights.length;
  if (p.topP < 1) {
    let mass = 0;
    for (let r = 0; r < weights.length; r++) {
      mass += (weights[r] as number) / total;
      if (mass >= p.topP) {
        cut = r + 1;
        break;
      }
    }
  }
  let kept = 0;
  for (let r = 0; r < cut; r++) kept += weights[r] as number;
  let u = rng.uniform() * kept;
  for (let r = 0; r < cut; r++) {
    u -= weights[r] as number;
    if (u <= 0) return picked(logits, offset, modelLse, order[r] as number);
  }
  return picked(logits, offset, modelLse, order[cut - 1] as number);
}
