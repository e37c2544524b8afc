/**
 * Shape plumbing shared by the gradient rules: summing a broadcast gradient back to its input's shape, and
 * broadcasting a reduced gradient out again. Both decide from static shapes, so they emit nothing when
 * nothing was broadcast and never need a runtime Shape op unless a symbolic dim forces one.
 */
import { type Dim, formatShape, isStatic, type Shape } from '../onnx/dims.js';
import type { GraphBuilder } from '../onnx/graph-builder.js';
import type { Value } from '../onnx/graph-types.js';

/**
 * Sums `dy` (shaped like a broadcast result) down to `x`'s shape: over the leading dims x lacks and over
 * the dims where x has size 1. One ReduceSum (keepdims) plus, when ranks differ, a free Squeeze.
 */
export function sumTo(g: GraphBuilder, dy: Value, x: Value): Value {
  const lead = dy.shape.length - x.shape.length;
  if (lead < 0)
    throw new Error(`sumTo: gradient ${formatShape(dy.shape)} has lower rank than ${formatShape(x.shape)}`);
  const axes: number[] = [];
  dy.shape.forEach((d, i) => {
    if (i < lead || (x.shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  let out = axes.length ? g.reduceSum(dy, axes, true) : dy;
  if (lead > 0)
    out = g.squeeze(
      out,
      Array.from({ length: lead }, (_, i) => i),
    );
  return out;
}

/** Broadcasts `dy` (x's shape with some dims 1, same rank) to x's shape. */
export function expandTo(g: GraphBuilder, dy: Value, x: Value): Value {
  if (dy.shape.every((d, i) => d === x.shape[i])) return dy;
  if (isStatic(x.shape)) return g.expand(dy, x.shape);
  return g.op('Expand', [dy, g.shapeOf(x)], {}, { shapes: [x.shape] });
}

/** x's shape with the given (normalised) axes set to 1, as a keepdims reduction leaves it. */
export function keepDims(shape: Shape, axes: ReadonlySet<number>): Dim[] {
  return shape.map((d, i) => (axes.has(i) ? 1 : d));
}

/** The axes a Reduce* node reduced, normalised; all of them when the axes input is empty. */
export function reducedAxes(g: GraphBuilder, axesInput: Value | null | undefined, rank: number): number[] {
  const data = axesInput ? g.constantData(axesInput) : undefined;
  if (axesInput && data === undefined) throw new Error('Reduce* gradients need constant axes');
  const axes = data ? Array.from(data as ArrayLike<number | bigint>, Number) : [];
  if (axes.length === 0) return Array.from({ length: rank }, (_, i) => i);
  return axes.map((a) => (a < 0 ? a + rank : a));
}

/** The values of a constant int input (axes, starts, pads), or an error naming what needed it. */
export function constInts(g: GraphBuilder, v: Value | null | undefined, what: string): number[] {
  const data = v ? g.constantData(v) : undefined;
  if (data === undefined) throw new Error(`${what} must be a constant for its gradient rule`);
  return Array.from(data as ArrayLike<number | bigint>, Number);
}
