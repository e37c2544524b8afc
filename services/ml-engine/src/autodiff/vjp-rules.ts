/**
 * Reverse-mode rules, one per ONNX op type, in the manner of tinygrad's gradient.py: each rule turns the
 * gradient of a node's output into thunks for the gradients of its inputs, emitting ONNX nodes on the
 * same builder. The walker (`backward.ts`) only calls the thunks of inputs that need a gradient, so no
 * node is emitted for a mask, an index or a constant. Every thunk returns a tensor of exactly its
 * input's shape (broadcasts are summed back with `sumTo`).
 */
import { numel, type Shape, staticShape } from '../onnx/dims.js';
import type { GraphBuilder } from '../onnx/graph-builder.js';
import { type GraphNode, intAttr, intsAttr, type Value } from '../onnx/graph-types.js';
import { SLICE_END } from '../onnx/shape-inference.js';
import { isFloat } from '../onnx/tensor-data.js';
import { constInts, expandTo, reducedAxes, sumTo } from './grad-shapes.js';
import { type Grad, gemmVjp, matMulVjp, once } from './linear-grad.js';

export type { Grad };

export interface VjpContext {
  readonly g: GraphBuilder;
  readonly node: GraphNode;
  /** The node's inputs; an omitted optional input reads as undefined (check `node.inputs`). */
  readonly x: readonly [Value, Value, Value, Value, Value];
  /** Output 0 and its gradient (zeros if only another output has one). */
  readonly y: Value;
  readonly dy: Value;
  /** Gradients of every output, null where an output does not reach the loss. */
  readonly dys: readonly (Value | null)[];
}

export type VjpRule = (c: VjpContext) => readonly Grad[];

const unary =
  (f: (c: VjpContext) => Value): VjpRule =>
  (c) => [() => f(c)];

const axisOf = (node: GraphNode, fallback: number) => intAttr(node.attrs, 'axis', fallback);

export const vjpRules: Readonly<Record<string, VjpRule>> = {
  // ---- elementwise ----
  Identity: unary(({ dy }) => dy),
  Neg: unary(({ g, dy }) => g.neg(dy)),
  Add: ({ g, dy, x: [a, b] }) => [() => sumTo(g, dy, a), () => sumTo(g, dy, b)],
  Sub: ({ g, dy, x: [a, b] }) => [() => sumTo(g, dy, a), () => sumTo(g, g.neg(dy), b)],
  Mul: ({ g, dy, x: [a, b] }) => [() => sumTo(g, g.mul(dy, b), a), () => sumTo(g, g.mul(dy, a), b)],
  Div: ({ g, dy, y, x: [a, b] }) => {
    const da = once(() => g.div(dy, b));
    return [() => sumTo(g, da(), a), () => sumTo(g, g.neg(g.mul(da(), y)), b)];
  },
  Sum: ({ g, dy, node }) => node.inputs.map((v) => () => sumTo(g, dy, v as Value)),
  Pow: ({ g, dy, y, x: [a, p] }) => [
    () => {
      const c = g.constantData(p);
      const e = c?.length === 1 ? Number(c[0]) : undefined;
      // A constant exponent folds into the scale: d(a^e) = e a^(e-1); squares need no Pow at all.
      const slope =
        e === undefined ? g.mul(p, g.pow(a, g.sub(p, 1))) : e === 2 ? g.mul(a, 2) : g.mul(g.pow(a, e - 1), e);
      return sumTo(g, g.mul(dy, slope), a);
    },
    () => sumTo(g, g.mul(dy, g.mul(y, g.log(a))), p),
  ],
  Sqrt: unary(({ g, dy, y }) => g.div(g.mul(dy, 0.5), y)),
  Reciprocal: unary(({ g, dy, y }) => g.neg(g.mul(dy, g.mul(y, y)))),
  Exp: unary(({ g, dy, y }) => g.mul(dy, y)),
  Log: unary(({ g, dy, x: [a] }) => g.div(dy, a)),
  Tanh: unary(({ g, dy, y }) => g.mul(dy, g.sub(1, g.mul(y, y)))),
  Sigmoid: unary(({ g, dy, y }) => g.mul(dy, g.mul(y, g.sub(1, y)))),
  Relu: unary(({ g, dy, y }) => g.where(g.greater(y, 0), dy, 0)),
  Softplus: unary(({ g, dy, x: [a] }) => g.mul(dy, g.sigmoid(a))),
  Abs: unary(({ g, dy, x: [a] }) => g.mul(dy, g.op('Sign', [a]))),
  Where: ({ g, dy, x: [cond, a, b] }) => [
    undefined,
    () => sumTo(g, g.where(cond, dy, 0), a),
    () => sumTo(g, g.where(cond, 0, dy), b),
  ],
  Cast: ({ g, dy, x: [a] }) => [isFloat(a.dtype) ? () => g.cast(dy, a.dtype) : undefined],

  // ---- linear algebra and normalisation ----
  MatMul: ({ g, dy, x: [a, b] }) => matMulVjp(g, a, b, dy),
  Gemm: ({ g, dy, node, x }) =>
    gemmVjp(g, node.attrs, [x[0], x[1], node.inputs[2] ? x[2] : undefined] as Value[], dy),
  // dx = y * (dy - sum(dy * y)), written as t - y * sum(t) with t = dy * y.
  Softmax: ({ g, dy, y, node }) => [
    () => {
      const t = g.mul(dy, y);
      return g.sub(t, g.mul(y, g.reduceSum(t, [axisOf(node, -1)])));
    },
  ],
  // dx = dy - softmax(x) * sum(dy), with softmax recovered as exp(y).
  LogSoftmax: unary(({ g, dy, y, node }) => g.sub(dy, g.mul(g.exp(y), g.reduceSum(dy, [axisOf(node, -1)])))),

  // ---- reductions ----
  ReduceSum: (c) => [() => reduceGrad(c, false)],
  ReduceMean: (c) => [() => reduceGrad(c, true)],
  // The whole gradient goes to every element equal to the max (ties each receive it).
  ReduceMax: ({ g, dy, y, node, x: [a] }) => [
    () => {
      const [yk, dk] = keepdimsPair(g, node, a, y, dy);
      return g.mul(g.cast(g.equal(a, yk), a.dtype), dk);
    },
  ],

  // ---- shape manipulation ----
  Reshape: ({ g, dy, x: [a] }) => [() => g.reshapeTo(dy, a.shape, a)],
  Transpose: ({ g, dy, node, x: [a] }) => [
    () => {
      const perm = intsAttr(node.attrs, 'perm') ?? a.shape.map((_, i) => a.shape.length - 1 - i);
      const inverse = perm.map((_, i) => perm.indexOf(i));
      return g.transpose(dy, inverse);
    },
  ],
  Unsqueeze: ({ g, dy, x: [, axes] }) => [() => g.squeeze(dy, constInts(g, axes, 'Unsqueeze axes'))],
  Squeeze: ({ g, dy, node, x: [a, axes] }) => [
    () => {
      const r = a.shape.length;
      const ax = node.inputs[1]
        ? constInts(g, axes, 'Squeeze axes').map((v) => (v < 0 ? v + r : v))
        : a.shape.flatMap((d, i) => (d === 1 ? [i] : []));
      return g.unsqueeze(dy, ax);
    },
  ],
  Expand: ({ g, dy, x: [a] }) => [() => sumTo(g, dy, a)],
  Concat: ({ g, dy, node }) => {
    const axis = axisOf(node, 0);
    const sizes = node.inputs.map((v) => (v as Value).shape.at(axis));
    const parts = once(() => {
      if (!sizes.every((s) => typeof s === 'number')) {
        throw new Error(`Concat gradient needs static sizes along axis ${axis}, got [${sizes.join(', ')}]`);
      }
      return g.split(dy, sizes as number[], axis);
    });
    return node.inputs.map((_, i) => () => parts()[i] as Value);
  },
  Split: ({ g, node, dys }) => [
    () => {
      const parts = node.outputs.map((o, i) => dys[i] ?? g.zerosLike(o));
      return g.concat(parts, axisOf(node, 0));
    },
  ],
  Slice: ({ g, dy, node, x: [a] }) => [() => sliceGrad(g, node, a, dy)],

  // ---- indexing ----
  // Embedding lookups scatter-add their rows back: O(rows * dim) work, where a one-hot MatMul would
  // cost 2 * rows * vocab * dim FLOPs and a [rows, vocab] one-hot tensor.
  Gather: ({ g, dy, node, x: [data, idx] }) => [() => gatherGrad(g, data, idx, dy, axisOf(node, 0))],
  GatherElements: ({ g, dy, node, x: [data, idx] }) => [
    () => g.scatterElements(g.zerosLike(data), idx, dy, axisOf(node, 0), 'add'),
  ],
};

/** ReduceSum/ReduceMean: broadcast the (kept-dims) gradient back over the reduced axes. */
function reduceGrad({ g, dy, node, x: [a] }: VjpContext, mean: boolean): Value {
  if (!node.inputs[1] && intAttr(node.attrs, 'noop_with_empty_axes', 0) === 1) return dy;
  const axes = reducedAxes(g, node.inputs[1], a.shape.length);
  let d = intAttr(node.attrs, 'keepdims', 1) === 1 ? dy : g.unsqueeze(dy, axes);
  if (mean) {
    // Scale the small reduced tensor, not the broadcast one; symbolic extents are counted at run time.
    const dims = axes.map((ax) => a.shape[ax] ?? 1);
    const known = dims.reduce<number>((p, q) => (typeof q === 'number' ? p * q : p), 1);
    d = g.mul(d, 1 / known);
    const symbolic = axes.filter((ax) => typeof a.shape[ax] !== 'number');
    if (symbolic.length) {
      const sizes = g.gather(g.shapeOf(a), g.int64s(symbolic));
      d = g.div(d, g.cast(g.op('ReduceProd', [sizes], { keepdims: 0 }), a.dtype));
    }
  }
  return expandTo(g, d, a);
}

/** Output and gradient of a reduction in keepdims form, so they broadcast against its input. */
function keepdimsPair(g: GraphBuilder, node: GraphNode, a: Value, y: Value, dy: Value): [Value, Value] {
  if (intAttr(node.attrs, 'keepdims', 1) === 1) return [y, dy];
  const axes = reducedAxes(g, node.inputs[1], a.shape.length);
  return [g.unsqueeze(y, axes), g.unsqueeze(dy, axes)];
}

/** Slice with unit steps: the gradient is dy zero-padded back to the input's extent. */
function sliceGrad(g: GraphBuilder, node: GraphNode, a: Value, dy: Value): Value {
  const starts = constInts(g, node.inputs[1], 'Slice starts');
  const ends = constInts(g, node.inputs[2], 'Slice ends');
  const r = a.shape.length;
  const axes = node.inputs[3] ? constInts(g, node.inputs[3], 'Slice axes') : starts.map((_, i) => i);
  const steps = node.inputs[4] ? constInts(g, node.inputs[4], 'Slice steps') : starts.map(() => 1);
  const pads = new Array<number>(2 * r).fill(0);
  axes.forEach((axis, i) => {
    const ax = axis < 0 ? axis + r : axis;
    const [start, end, step] = [starts[i] ?? 0, ends[i] ?? 0, steps[i] ?? 1];
    if (step !== 1) throw new Error(`Slice gradient supports unit steps only (node ${node.name})`);
    const dim = a.shape[ax];
    if (typeof dim === 'number') {
      const norm = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
      pads[ax] = norm(start);
      pads[ax + r] = dim - Math.max(norm(end), norm(start));
    } else if (start >= 0 && (end >= SLICE_END || end < 0)) {
      pads[ax] = start;
      pads[ax + r] = end >= SLICE_END ? 0 : -end;
    } else {
      throw new Error(
        `Slice gradient on symbolic dim ${dim} needs start >= 0 and a negative or open end (node ${node.name})`,
      );
    }
  });
  if (pads.every((p) => p === 0)) return dy;
  // The padded extent is the input's, whatever symbolic name the slice gave its own.
  return g.op('Pad', [dy, g.int64s(pads)], {}, { shapes: [a.shape] });
}

/**
 * Gather along `axis`: each row of dy is added back into the row of `data` it was read from, summing
 * repeated indices (tokens that occur several times in a batch). The sum is a ScatterElements 'add' of dy
 * flattened to [indices, width], with every index broadcast along its row, into zeros of [rows, width].
 *
 * Not ScatterND 'add' (the obvious form, used before): ORT's CPU kernel splits the index rows over its
 * threads with no regard for repeats, so with more than one intra-op thread two threads add into the same
 * embedding row at once and updates are lost (onnxruntime issue 18048). Embedding gradients came out wrong
 * and different on every run, which is why two `rlhf run`s with one seed ended with different metrics.
 * ScatterElements never splits the updates of one output element between threads: the sum is the
 * sequential one, bit for bit, whatever the thread count (checked in vjp-rules.test.ts). It costs more
 * than the racy ScatterND (the broadcast int64 indices, a per-element kernel), a few percent of a training
 * step (services/ml-engine/scripts/bench-gather-grad.ts), far less than training on one thread.
 *
 * A non-zero axis is moved to the front and back with Transposes.
 */
function gatherGrad(g: GraphBuilder, data: Value, idx: Value, dy: Value, axis: number): Value {
  const r = data.shape.length;
  const ax = axis < 0 ? axis + r : axis;
  const q = idx.shape.length;
  // `rows`: data with the gathered axis first; `updates`: dy in that order (idx's dims, then rows[1:]).
  let rows: Shape = data.shape;
  let updates = dy;
  if (ax !== 0) {
    rows = staticShape(
      [data.shape[ax] ?? 1, ...data.shape.slice(0, ax), ...data.shape.slice(ax + 1)],
      `Gather gradient along axis ${axis}`,
    );
    // dy is data[:ax] + idx + data[ax+1:]; put the idx block first.
    updates = g.transpose(dy, [
      ...Array.from({ length: q }, (_, i) => ax + i),
      ...Array.from({ length: ax }, (_, i) => i),
      ...Array.from({ length: r - ax - 1 }, (_, i) => ax + q + i),
    ]);
  }
  const width = numel(rows.slice(1));
  const flat =
    typeof width === 'number'
      ? g.reshape(updates, [-1, width])
      : g.op('Flatten', [updates], { axis: q }, { shapes: [[numel(idx.shape), width]] });
  const index = g.op(
    'Expand',
    [g.reshape(idx, [-1, 1]), g.shapeOf(flat)],
    {},
    {
      shapes: [flat.shape],
      dtypes: ['int64'],
    },
  );
  let zeros: Value;
  if (ax !== 0) zeros = g.filled([rows[0] ?? 1, width], 0, data.dtype);
  else zeros = r === 2 ? g.zerosLike(data) : g.reshape(g.zerosLike(data), [0, -1]);
  const summed = g.scatterElements(zeros, index, flat, 0, 'add');
  if (ax === 0) return r === 2 ? summed : g.reshapeTo(summed, data.shape, data);
  const back = [
    ...Array.from({ length: ax }, (_, i) => i + 1),
    0,
    ...Array.from({ length: r - ax - 1 }, (_, i) => ax + 1 + i),
  ];
  return g.transpose(g.reshapeTo(summed, rows), back);
}
