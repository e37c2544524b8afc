/**
 * Causal language-model terms. The caller aligns targets with positions (`labels[b, t]` is the token that
 * position t should predict) and says which positions count (`lossMask`), so the same pieces serve SFT on
 * whole texts, SFT on responses only, the preference model's A/B target token and DPO sequence log-probs.
 */
import type { GraphBuilder } from '../onnx/graph-builder.js';
import type { Value } from '../onnx/graph-types.js';

/** log p(labels[b, t] | prefix) for every position: [batch, seq]. */
export function tokenLogprobs(g: GraphBuilder, logits: Value, labels: Value): Value {
  const logp = g.logSoftmax(logits, -1);
  const picked = g.gatherElements(logp, g.unsqueeze(labels, [2]), 2);
  return g.squeeze(picked, [2]);
}

/** Sum of the counted token log-probs of each row: [batch]. */
export function sequenceLogprobs(g: GraphBuilder, tokenLogp: Value, lossMask: Value): Value {
  return g.reduceSum(g.mul(tokenLogp, lossMask), [1], false);
}

/** Mean negative log-likelihood over the counted tokens of the whole batch, and the token count. */
export function maskedNll(
  g: GraphBuilder,
  tokenLogp: Value,
  lossMask: Value,
): { loss: Value; tokens: Value } {
  const tokens = g.reduceSum(lossMask, [0, 1], false);
  // max(count, 1) keeps an all-masked batch at loss 0 instead of 0/0.
  const safe = g.op('Max', [tokens, g.scalar(1, lossMask.dtype)]);
  const loss = g.div(g.neg(g.reduceSum(g.mul(tokenLogp, lossMask), [0, 1], false)), safe);
  return { loss, tokens };
}
