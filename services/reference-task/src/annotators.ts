/**
 * Simulated annotators: P(a > b) = sigmoid((gold(a) - gold(b)) / tau + kappa * (words(a) - words(b))).
 * kappa > 0 is a verbosity bias, as real annotators have; a reward model trained on these labels learns it,
 * which is what the length penalty of the online iterations then has to cancel.
 */
import type { Rng } from '@rlhf/ml-engine/random';

export interface AnnotatorModel {
  tau: number;
  kappa: number;
}

export const defaultAnnotators: AnnotatorModel = { tau: 0.25, kappa: 0.4 };

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

export interface Judged {
  gold: number;
  words: number;
}

export function preferenceProbability(a: Judged, b: Judged, m: AnnotatorModel = defaultAnnotators): number {
  return sigmoid((a.gold - b.gold) / m.tau + m.kappa * (a.words - b.words));
}

/** Draws a label: true when the annotator prefers a. */
export function annotate(rng: Rng, a: Judged, b: Judged, m: AnnotatorModel = defaultAnnotators): boolean {
  return rng.uniform() < preferenceProbability(a, b, m);
}

/**
 * The Bayes rate: the accuracy of the best possible predictor of these noisy labels, which knows the label
 * model exactly and always predicts the likelier side. No learned reward model can beat it in expectation.
 */
export function bayesRate(pairs: Array<[Judged, Judged]>, m: AnnotatorModel = defaultAnnotators): number {
  if (pairs.length === 0) return Number.NaN;
  let total = 0;
  for (const [a, b] of pairs) {
    const p = preferenceProbability(a, b, m);
    total += Math.max(p, 1 - p);
  }
  return total / pairs.length;
}
