/**
 * Pair bookkeeping shared by the pairwise losses: a batch holds the chosen rows first and the rejected
 * rows second ([2 * pairs]), so one forward pass scores both sides.
 */
import type { GraphBuilder } from '../onnx/graph-builder.js';
import type { Value } from '../onnx/graph-types.js';

/** Splits a [2 * pairs] vector into its chosen and rejected halves, each [1, pairs]. */
export function splitPairs(g: GraphBuilder, v: Value): { chosen: Value; rejected: Value } {
  const [chosen, rejected] = g.split(g.reshape(v, [2, -1]), [1, 1], 0) as [Value, Value];
  return { chosen, rejected };
}

/** Mean over every element, as a scalar. */
export function meanAll(g: GraphBuilder, v: Value): Value {
  return g.reduceMean(
    v,
    v.shape.map((_, i) => i),
    false,
  );
}

/** Fraction of elements above zero, as a scalar metric (no gradient flows through it). */
export function fractionPositive(g: GraphBuilder, v: Value): Value {
  return meanAll(g, g.cast(g.greater(v, g.scalar(0, v.dtype)), v.dtype));
}
