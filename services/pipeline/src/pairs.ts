/**
 * Step 4 of the paper's Algorithm 2: from n judged responses per prompt, one (chosen, rejected) pair.
 * maxMin takes the best and the worst (the paper's choice); maxRandom the best and a random other; random
 * two at random (ordered by score). Pairs whose scores tie or whose texts are identical teach nothing and
 * are dropped.
 */
import type { Rng } from '@rlhf/ml-engine';

export type PairStrategy = 'maxMin' | 'maxRandom' | 'random';

export interface Judged<T> {
  /** One entry per response: what the pair carries (text, ids, ...). */
  responses: T[];
  /** The judge's score of each response (higher is better). */
  scores: number[];
  /** Identity of a response for the identical-text rule. */
  key: (r: T) => string;
}

export interface Pair<T> {
  chosen: T;
  rejected: T;
  chosenIndex: number;
  rejectedIndex: number;
  margin: number;
}

export function buildPair<T>(j: Judged<T>, strategy: PairStrategy, rng: Rng): Pair<T> | null {
  const n = j.responses.length;
  if (n < 2 || j.scores.length !== n) return null;
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (j.scores[b] as number) - (j.scores[a] as number) || a - b,
  );
  let hi = order[0] as number;
  let lo = order[n - 1] as number;
  if (strategy === 'maxRandom') {
    lo = order[1 + rng.int(n - 1)] as number;
  } else if (strategy === 'random') {
    const a = rng.int(n);
    let b = rng.int(n - 1);
    if (b >= a) b++;
    [hi, lo] = (j.scores[a] as number) >= (j.scores[b] as number) ? [a, b] : [b, a];
  }
  const margin = (j.scores[hi] as number) - (j.scores[lo] as number);
  if (!(margin > 0)) return null;
  const chosen = j.responses[hi] as T;
  const rejected = j.responses[lo] as T;
  if (j.key(chosen) === j.key(rejected)) return null;
  return { chosen, rejected, chosenIndex: hi, rejectedIndex: lo, margin };
}
