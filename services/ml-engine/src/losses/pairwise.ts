/**
 * Pair bookkeeping shared by the pairwise losses: a batch holds the chosen rows first and the rejected
 * rows second ([2 * pairs]), so one forward pass scores both sides.
 */
import type { GraphBuilder } from '../onnx/graph-builder.js';
import type { Value } from '../onnx/graph-types.js';

/** Splits a [2 * pairs] vector into its chosen and rejected halves, each [1, pairs]. */
export function splitPairs(g: GraphBuilder, v: Value): { chosen: Value; rejected: Value } {
  const rows = v.shape[0];
  // A symbolic batch cannot be halved by shape inference, so name the half: 'pairs'.
  const pairs = typeof rows === 'number' ? rows / 2 : 'pairs';
  const halves = g.op('Reshape', [v, g.int64s([2, -1])], {}, { shapes: [[2, pairs]] });
  const [chosen, rejected] = g.split(halves, [1, 1], 0) as [Value, Value];
  return { chosen, rejected };
}

/** Mean over every element, as a scalar. */
export function meanAll(g: GraphBuilder, v: Value): Value {
  const axes = v.shape.map((_, i) => i);
  if (v.shape.every((d) => typeof d === 'number')) return g.reduceMean(v, axes, false);
  // Symbolic sizes: sum over the element count taken at run time (ReduceMean's gradient needs static dims).
  const count = g.cast(g.op('Size', [v], {}, { shapes: [[]], dtypes: ['int64'] }), v.dtype);
  return g.div(g.reduceSum(v, axes, false), count);
}

/** Fraction of elements above zero, as a scalar metric (no gradient flows through it). */
export function fractionPositive(g: GraphBuilder, v: Value): Value {
  return meanAll(g, g.cast(g.greater(v, g.scalar(0, v.dtype)), v.dtype));
}
