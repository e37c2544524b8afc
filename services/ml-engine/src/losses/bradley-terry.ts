/** Bradley-Terry reward model loss: -log sigmoid(r(x, y_w) - r(x, y_l)), written as softplus(-(diff)). */
import type { GraphBuilder } from '../onnx/graph-builder.js';
import type { Value } from '../onnx/graph-types.js';
import { fractionPositive, meanAll, splitPairs } from './pairwise.js';

export interface PairLoss {
  loss: Value;
  metrics: Record<string, Value>;
}

/** scores: [2 * pairs], chosen rows first. */
export function bradleyTerryLoss(g: GraphBuilder, scores: Value): PairLoss {
  const { chosen, rejected } = splitPairs(g, scores);
  const diff = g.sub(chosen, rejected);
  return {
    loss: meanAll(g, g.softplus(g.neg(diff))),
    metrics: {
      accuracy: fractionPositive(g, diff),
      margin: meanAll(g, diff),
      chosen_score: meanAll(g, chosen),
      rejected_score: meanAll(g, rejected),
    },
  };
}
