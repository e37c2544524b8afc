/**
 * Direct preference optimisation on sequence log-probs. With h = (log pi(y_w) - log ref(y_w)) -
 * (log pi(y_l) - log ref(y_l)):
 *   sigmoid: -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)   (label smoothing eps, cDPO)
 *   ipo:     (h - 1 / (2 beta))^2
 *   hinge:   max(0, 1 - beta h)
 * plus an optional RPO-style term: nllWeight times the mean NLL of the chosen response's tokens, which keeps
 * a small policy fluent while the pairwise term pushes it around.
 */
import type { GraphBuilder } from '../onnx/graph-builder.js';
import type { Value } from '../onnx/graph-types.js';
import type { PairLoss } from './bradley-terry.js';
import { maskedNll } from './causal-lm.js';
import { fractionPositive, meanAll, splitPairs } from './pairwise.js';

export type DpoLossType = 'sigmoid' | 'ipo' | 'hinge';

export interface DpoOptions {
  beta: number;
  lossType: DpoLossType;
  labelSmoothing: number;
  nllWeight: number;
}

export const defaultDpoOptions: DpoOptions = {
  beta: 0.1,
  lossType: 'sigmoid',
  labelSmoothing: 0,
  nllWeight: 0,
};

export interface DpoInputs {
  /** Policy sequence log-probs [2 * pairs], chosen rows first. */
  policyLogps: Value;
  /** Reference sequence log-probs [2 * pairs], fed in (computed once per dataset). */
  referenceLogps: Value;
  /** Token log-probs [2 * pairs, seq] and the mask of chosen response tokens (rejected rows all 0). */
  tokenLogps: Value;
  nllMask: Value;
}

export function dpoLoss(g: GraphBuilder, o: DpoOptions, x: DpoInputs): PairLoss {
  const pi = splitPairs(g, x.policyLogps);
  const ref = splitPairs(g, x.referenceLogps);
  const chosenRatio = g.sub(pi.chosen, ref.chosen);
  const rejectedRatio = g.sub(pi.rejected, ref.rejected);
  const h = g.sub(chosenRatio, rejectedRatio);
  const bh = g.mul(h, o.beta);
  let perPair: Value;
  if (o.lossType === 'sigmoid') {
    const forward = g.softplus(g.neg(bh));
    perPair =
      o.labelSmoothing > 0
        ? g.add(g.mul(forward, 1 - o.labelSmoothing), g.mul(g.softplus(bh), o.labelSmoothing))
        : forward;
  } else if (o.lossType === 'ipo') {
    const d = g.sub(h, 1 / (2 * o.beta));
    perPair = g.mul(d, d);
  } else {
    perPair = g.relu(g.sub(g.scalar(1, bh.dtype), bh));
  }
  let loss = meanAll(g, perPair);
  const metrics: Record<string, Value> = {
    dpo_loss: loss,
    chosen_reward: meanAll(g, g.mul(chosenRatio, o.beta)),
    rejected_reward: meanAll(g, g.mul(rejectedRatio, o.beta)),
    margin: meanAll(g, bh),
    accuracy: fractionPositive(g, h),
  };
  if (o.nllWeight > 0) {
    const nll = maskedNll(g, x.tokenLogps, x.nllMask).loss;
    metrics.nll = nll;
    loss = g.add(loss, g.mul(nll, o.nllWeight));
  }
  return { loss, metrics };
}
