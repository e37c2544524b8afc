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

function logSumExp(x: Float32Array, offset: number, n: number, scale: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) max = Math.max(max, (x[offset + i] as number) * scale);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp((x[offset + i] as number) * scale - max);
  return max + Math.log(sum);
}

/** Picks from `logits[offset .. offset + vocab)`. */
export function sampleToken(
  logits: Float32Array,
  offset: number,
  vocab: number,
  p: SamplingParams,
  rng: Rng,
): Picked {
  const modelLse = logSumExp(logits, offset, vocab, 1);
  const logprobOf = (t: number): number => (logits[offset + t] as number) - modelLse;
  if (p.greedy || p.temperature === 0) {
    let best = 0;
    for (let i = 1; i < vocab; i++)
      if ((logits[offset + i] as number) > (logits[offset + best] as number)) best = i;
    return { token: best, logprob: logprobOf(best) };
  }
  const scale = 1 / p.temperature;
  if (p.topK === 0 && p.topP >= 1) {
    // Full distribution: one pass of inverse-CDF sampling, no sort.
    const lse = logSumExp(logits, offset, vocab, scale);
    let u = rng.uniform();
    for (let i = 0; i < vocab; i++) {
      u -= Math.exp((logits[offset + i] as number) * scale - lse);
      if (u <= 0) return { token: i, logprob: logprobOf(i) };
    }
    return { token: vocab - 1, logprob: logprobOf(vocab - 1) };
  }
  const order = Array.from({ length: vocab }, (_, i) => i).sort(
    (a, b) => (logits[offset + b] as number) - (logits[offset + a] as number) || a - b,
  );
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
    if (u <= 0) return { token: order[r] as number, logprob: logprobOf(order[r] as number) };
  }
  const last = order[cut - 1] as number;
  return { token: last, logprob: logprobOf(last) };
}
