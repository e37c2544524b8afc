/**
 * Static shape inference, one entry per op the builder supports (default domain unless the key names one,
 * as in 'com.microsoft:FusedMatMul'; opset 18+ input forms:
 * axes, pads, split sizes and shapes are constant int64 inputs). Symbolic dims flow through; where an
 * output size depends on runtime values the caller passes `shapes` to `op()` instead.
 */
import {
  addDims,
  broadcastShapes,
  type Dim,
  divDims,
  formatShape,
  mulDims,
  normAxis,
  numel,
  type Shape,
  subDim,
} from './dims.js';
import { type Attrs, intAttr, intsAttr, type OutInfo, type Value } from './graph-types.js';
import type { TensorProto } from './onnx-types.js';
import { type DType, dtypeFromCode } from './tensor-data.js';

export interface InferContext {
  readonly opType: string;
  /** `op X (node name)` for error messages. */
  readonly where: string;
  readonly inputs: readonly (Value | null)[];
  readonly attrs: Attrs;
  /** How many outputs the caller asked for. */
  readonly outputs: number;
  /** Required input i. */
  input(i: number): Value;
  /** The values of constant int input i, or undefined when absent or not a constant. */
  ints(i: number): number[] | undefined;
}

export type ShapeRule = (c: InferContext) => OutInfo[];

/** Inputs past this value are treated as "to the end" by Slice (ONNX uses INT64_MAX; any huge value works). */
export const SLICE_END = 2 ** 31 - 1;

const same: ShapeRule = (c) => [{ dtype: c.input(0).dtype, shape: [...c.input(0).shape] }];

function sameDtypes(c: InferContext, values: readonly Value[]): DType {
  const dtype = values[0]?.dtype ?? 'float32';
  for (const v of values) {
    if (v.dtype !== dtype) throw new Error(`${c.where}: input dtypes ${dtype} and ${v.dtype} differ`);
  }
  return dtype;
}

function present(c: InferContext): Value[] {
  return c.inputs.filter((v): v is Value => v !== null);
}

const broadcast: ShapeRule = (c) => {
  const ins = present(c);
  const dtype = c.opType === 'Pow' ? c.input(0).dtype : sameDtypes(c, ins);
  return [
    {
      dtype,
      shape: broadcastShapes(
        ins.map((v) => v.shape),
        c.where,
      ),
    },
  ];
};

const compare: ShapeRule = (c) => {
  sameDtypes(c, present(c));
  return [
    {
      dtype: 'bool',
      shape: broadcastShapes(
        present(c).map((v) => v.shape),
        c.where,
      ),
    },
  ];
};

function constInts(c: InferContext, i: number, what: string): number[] {
  const v = c.ints(i);
  if (v === undefined)
    throw new Error(`${c.where}: ${what} (input ${i}) must be a constant; pass shapes to op()`);
  return v;
}

function matmulShape(c: InferContext, a: Shape, b: Shape): Dim[] {
  if (a.length === 0 || b.length === 0) throw new Error(`${c.where}: MatMul needs inputs of rank >= 1`);
  const a2 = a.length === 1 ? [1, ...a] : a;
  const b2 = b.length === 1 ? [...b, 1] : b;
  const k1 = a2[a2.length - 1];
  const k2 = b2[b2.length - 2];
  if (k1 !== k2) throw new Error(`${c.where}: inner dims differ, ${formatShape(a)} @ ${formatShape(b)}`);
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)], c.where);
  const out: Dim[] = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2] as Dim);
  if (b.length > 1) out.push(b2[b2.length - 1] as Dim);
  return out;
}

function reduce(c: InferContext, keepDefault = 1): OutInfo[] {
  const x = c.input(0);
  const keep = intAttr(c.attrs, 'keepdims', keepDefault) === 1;
  const given = c.inputs[1] ? constInts(c, 1, 'axes') : (intsAttr(c.attrs, 'axes') ?? []);
  const noop = intAttr(c.attrs, 'noop_with_empty_axes', 0) === 1;
  if (given.length === 0 && noop) return [{ dtype: x.dtype, shape: [...x.shape] }];
  const axes = new Set(
    given.length === 0 ? x.shape.map((_, i) => i) : given.map((a) => normAxis(a, x.shape.length, c.where)),
  );
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!axes.has(i)) shape.push(d);
    else if (keep) shape.push(1);
  });
  return [{ dtype: x.dtype, shape }];
}

function reshape(c: InferContext): OutInfo[] {
  const x = c.input(0);
  const spec = constInts(c, 1, 'shape');
  const allowZero = intAttr(c.attrs, 'allowzero', 0) === 1;
  const out: Dim[] = spec.map((s, i) => (s === 0 && !allowZero ? (x.shape[i] ?? 0) : s));
  const hole = out.indexOf(-1);
  if (hole >= 0) {
    const known = numel(out.filter((_, i) => i !== hole));
    const rest = divDims(numel(x.shape), known);
    if (rest === undefined)
      throw new Error(`${c.where}: cannot reshape ${formatShape(x.shape)} to [${spec}]`);
    out[hole] = rest;
  } else if (numel(out) !== numel(x.shape)) {
    throw new Error(`${c.where}: cannot reshape ${formatShape(x.shape)} to [${spec}]`);
  }
  return [{ dtype: x.dtype, shape: out }];
}

/** Output length of one sliced axis; symbolic dims are assumed at least as long as the constant bounds. */
function sliceLength(c: InferContext, dim: Dim, start: number, end: number, step: number): Dim {
  if (typeof dim === 'number') {
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    const norm = (v: number) => (v < 0 ? v + dim : v);
    const s = step > 0 ? clamp(norm(start), 0, dim) : clamp(norm(start), -1, dim - 1);
    const e = step > 0 ? clamp(norm(end), 0, dim) : clamp(norm(end), -1, dim - 1);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  if (step === 1 && start >= 0 && end >= SLICE_END) return subDim(dim, start);
  if (step === 1 && start >= 0 && end < 0) return subDim(dim, start - end);
  if (step === 1 && start < 0 && end >= SLICE_END) return -start;
  if (step === 1 && start >= 0 && end >= start) return end - start;
  throw new Error(
    `${c.where}: cannot infer a slice [${start}:${end}:${step}] of symbolic dim ${dim}; pass shapes`,
  );
}

function sliceShape(c: InferContext): OutInfo[] {
  const x = c.input(0);
  const starts = constInts(c, 1, 'starts');
  const ends = constInts(c, 2, 'ends');
  const axes = c.inputs[3] ? constInts(c, 3, 'axes') : starts.map((_, i) => i);
  const steps = c.inputs[4] ? constInts(c, 4, 'steps') : starts.map(() => 1);
  const shape = [...x.shape];
  axes.forEach((a, i) => {
    const ax = normAxis(a, x.shape.length, c.where);
    shape[ax] = sliceLength(c, x.shape[ax] as Dim, starts[i] ?? 0, ends[i] ?? 0, steps[i] ?? 1);
  });
  return [{ dtype: x.dtype, shape }];
}

function splitShapes(c: InferContext): OutInfo[] {
  const x = c.input(0);
  const axis = normAxis(intAttr(c.attrs, 'axis', 0), x.shape.length, c.where);
  const dim = x.shape[axis] as Dim;
  let sizes: Dim[];
  if (c.inputs[1]) sizes = constInts(c, 1, 'split');
  else {
    const parts = intAttr(c.attrs, 'num_outputs', c.outputs);
    const each = divDims(dim, parts);
    if (each === undefined)
      throw new Error(`${c.where}: dim ${dim} does not split into ${parts} equal parts`);
    sizes = Array.from({ length: parts }, () => each);
  }
  if (sizes.length !== c.outputs)
    throw new Error(`${c.where}: ${sizes.length} split sizes for ${c.outputs} outputs`);
  return sizes.map((s) => {
    const shape = [...x.shape];
    shape[axis] = s;
    return { dtype: x.dtype, shape };
  });
}

function concatShape(c: InferContext): OutInfo[] {
  const ins = present(c);
  const first = c.input(0);
  const axis = normAxis(intAttr(c.attrs, 'axis', 0), first.shape.length, c.where);
  const dtype = sameDtypes(c, ins);
  const shape = [...first.shape];
  shape[axis] = 0;
  for (const v of ins) {
    if (v.shape.length !== first.shape.length || v.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
      throw new Error(
        `${c.where}: cannot concat ${ins.map((i) => formatShape(i.shape)).join(', ')} on axis ${axis}`,
      );
    }
    shape[axis] = addDims(shape[axis] as Dim, v.shape[axis] as Dim);
  }
  return [{ dtype, shape }];
}

function gatherShape(c: InferContext): OutInfo[] {
  const x = c.input(0);
  const idx = c.input(1);
  const axis = normAxis(intAttr(c.attrs, 'axis', 0), x.shape.length, c.where);
  return [{ dtype: x.dtype, shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)] }];
}

function unsqueezeShape(c: InferContext): OutInfo[] {
  const x = c.input(0);
  const rank = x.shape.length + constInts(c, 1, 'axes').length;
  const axes = new Set(constInts(c, 1, 'axes').map((a) => normAxis(a, rank, c.where)));
  const rest = [...x.shape];
  const shape = Array.from({ length: rank }, (_, i) => (axes.has(i) ? 1 : (rest.shift() as Dim)));
  return [{ dtype: x.dtype, shape }];
}

function squeezeShape(c: InferContext): OutInfo[] {
  const x = c.input(0);
  const axes = c.inputs[1]
    ? new Set(constInts(c, 1, 'axes').map((a) => normAxis(a, x.shape.length, c.where)))
    : new Set(x.shape.flatMap((d, i) => (d === 1 ? [i] : [])));
  for (const a of axes) {
    if (x.shape[a] !== 1) throw new Error(`${c.where}: cannot squeeze dim ${a} of ${formatShape(x.shape)}`);
  }
  return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.has(i)) }];
}

function transposeShape(c: InferContext): OutInfo[] {
  const x = c.input(0);
  const perm = intsAttr(c.attrs, 'perm') ?? x.shape.map((_, i) => x.shape.length - 1 - i);
  if (perm.length !== x.shape.length || new Set(perm).size !== perm.length) {
    throw new Error(`${c.where}: perm [${perm}] does not permute ${formatShape(x.shape)}`);
  }
  return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[normAxis(p, x.shape.length, c.where)] as Dim) }];
}

function gemmShape(c: InferContext): OutInfo[] {
  const a = c.input(0);
  const b = c.input(1);
  if (a.shape.length !== 2 || b.shape.length !== 2) throw new Error(`${c.where}: Gemm needs 2-D inputs`);
  const [m, k1] = intAttr(c.attrs, 'transA', 0) ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [k2, n] = intAttr(c.attrs, 'transB', 0) ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k1 !== k2)
    throw new Error(`${c.where}: inner dims differ, ${formatShape(a.shape)} x ${formatShape(b.shape)}`);
  const shape = [m as Dim, n as Dim];
  const bias = c.inputs[2];
  if (bias) broadcastShapes([shape, bias.shape], c.where);
  return [{ dtype: sameDtypes(c, present(c)), shape }];
}

function padShape(c: InferContext): OutInfo[] {
  const x = c.input(0);
  const pads = constInts(c, 1, 'pads');
  const rank = x.shape.length;
  const axes = c.inputs[3]
    ? constInts(c, 3, 'axes').map((a) => normAxis(a, rank, c.where))
    : x.shape.map((_, i) => i);
  const shape = [...x.shape];
  axes.forEach((ax, i) => {
    const extra = (pads[i] ?? 0) + (pads[i + axes.length] ?? 0);
    const d = shape[ax] as Dim;
    if (extra !== 0 && typeof d !== 'number') throw new Error(`${c.where}: cannot pad symbolic dim ${d}`);
    shape[ax] = typeof d === 'number' ? d + extra : d;
  });
  return [{ dtype: x.dtype, shape }];
}

function tensorDtype(t: unknown, where: string): DType {
  const code = (t as TensorProto | undefined)?.dataType ?? 1;
  const dtype = dtypeFromCode(code);
  if (dtype === undefined) throw new Error(`${where}: unsupported value dtype ${code}`);
  return dtype;
}

/**
 * Attention (opset 23) with 3-D Q/K/V [batch, seq, heads * head_dim] (q_num_heads and kv_num_heads given) or
 * 4-D [batch, heads, seq, head_dim]: Y has Q's layout with V's head size; present_key|value are 4-D
 * [batch, kv_heads, past + kv_seq, head_dim], past_key|value (inputs 4 and 5) first along the sequence.
 */
const attentionShapes: ShapeRule = (c) => {
  const [q, k, v] = [c.input(0), c.input(1), c.input(2)];
  const dtype = sameDtypes(c, [q, k, v]);
  const rank = q.shape.length;
  if (rank !== 3 && rank !== 4)
    throw new Error(`${c.where}: Q must be 3-D or 4-D, got ${formatShape(q.shape)}`);
  const qHeads = intAttr(c.attrs, 'q_num_heads', 0);
  const kvHeads = intAttr(c.attrs, 'kv_num_heads', 0);
  if (rank === 3 && (qHeads <= 0 || kvHeads <= 0))
    throw new Error(`${c.where}: 3-D inputs need q_num_heads and kv_num_heads`);
  const headOf = (x: Value, heads: number): Dim => {
    const d = rank === 3 ? divDims(x.shape[2] as Dim, heads) : x.shape[3];
    if (d === undefined)
      throw new Error(`${c.where}: ${formatShape(x.shape)} does not split into ${heads} heads`);
    return d as Dim;
  };
  const vHead = headOf(v, kvHeads);
  const y: Dim[] =
    rank === 3
      ? [q.shape[0] as Dim, q.shape[1] as Dim, mulDims(qHeads, vHead)]
      : [q.shape[0] as Dim, q.shape[1] as Dim, q.shape[2] as Dim, vHead];
  const outs: OutInfo[] = [{ dtype, shape: y }];
  if (c.outputs > 1) {
    const kvSeq = (rank === 3 ? k.shape[1] : k.shape[2]) as Dim;
    const heads = rank === 3 ? kvHeads : (k.shape[1] as Dim);
    const past = c.inputs[4];
    const total = past ? addDims(past.shape[2] as Dim, kvSeq) : kvSeq;
    outs.push({ dtype, shape: [k.shape[0] as Dim, heads, total, headOf(k, kvHeads)] });
    if (c.outputs > 2) outs.push({ dtype, shape: [v.shape[0] as Dim, heads, total, vHead] });
  }
  if (c.outputs > 3) throw new Error(`${c.where}: the qk_matmul output is not supported`);
  return outs;
};

const unary = ['Identity', 'Neg', 'Abs', 'Sqrt', 'Reciprocal', 'Exp', 'Log', 'Tanh', 'Sigmoid', 'Relu'];
const unary2 = ['Softplus', 'Erf', 'Sin', 'Cos', 'Floor', 'Ceil', 'Sign', 'Not', 'Softmax', 'LogSoftmax'];

export const shapeRules: Record<string, ShapeRule> = {
  ...Object.fromEntries([...unary, ...unary2, 'Gelu', 'Trilu', 'CumSum'].map((op) => [op, same])),
  ...Object.fromEntries(
    ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean'].map((op) => [op, broadcast]),
  ),
  ...Object.fromEntries(
    ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor'].map((op) => [
      op,
      compare,
    ]),
  ),
  Where: (c) => {
    const [, x, y] = [c.input(0), c.input(1), c.input(2)];
    const dtype = sameDtypes(c, [x, y]);
    return [{ dtype, shape: broadcastShapes([c.input(0).shape, x.shape, y.shape], c.where) }];
  },
  Cast: (c) => {
    const dtype = dtypeFromCode(intAttr(c.attrs, 'to', 0));
    if (dtype === undefined) throw new Error(`${c.where}: unsupported Cast target ${String(c.attrs.to)}`);
    return [{ dtype, shape: [...c.input(0).shape] }];
  },
  MatMul: (c) => [
    {
      dtype: sameDtypes(c, [c.input(0), c.input(1)]),
      shape: matmulShape(c, c.input(0).shape, c.input(1).shape),
    },
  ],
  Gemm: gemmShape,
  // ORT's contrib MatMul with transposed operands (float32 kernel only); the autodiff emits it.
  'com.microsoft:FusedMatMul': (c) => {
    const swap = (s: Shape, on: boolean): Shape =>
      on && s.length >= 2 ? [...s.slice(0, -2), s[s.length - 1] as Dim, s[s.length - 2] as Dim] : s;
    const [a, b] = [c.input(0), c.input(1)];
    const shape = matmulShape(
      c,
      swap(a.shape, intAttr(c.attrs, 'transA', 0) === 1),
      swap(b.shape, intAttr(c.attrs, 'transB', 0) === 1),
    );
    return [{ dtype: sameDtypes(c, [a, b]), shape }];
  },
  ReduceSum: (c) => reduce(c),
  ReduceMean: (c) => reduce(c),
  ReduceMax: (c) => reduce(c),
  ReduceMin: (c) => reduce(c),
  ReduceProd: (c) => reduce(c),
  ArgMax: (c) => {
    const x = c.input(0);
    const axis = normAxis(intAttr(c.attrs, 'axis', 0), x.shape.length, c.where);
    const keep = intAttr(c.attrs, 'keepdims', 1) === 1;
    const shape = x.shape.flatMap((d, i) => (i !== axis ? [d] : keep ? [1] : []));
    return [{ dtype: 'int64', shape }];
  },
  Reshape: reshape,
  Transpose: transposeShape,
  Unsqueeze: unsqueezeShape,
  Squeeze: squeezeShape,
  Concat: concatShape,
  Slice: sliceShape,
  Split: splitShapes,
  Gather: gatherShape,
  GatherElements: (c) => [{ dtype: c.input(0).dtype, shape: [...c.input(1).shape] }],
  ScatterND: same,
  ScatterElements: same,
  Expand: (c) => [
    {
      dtype: c.input(0).dtype,
      shape: broadcastShapes([c.input(0).shape, constInts(c, 1, 'shape')], c.where),
    },
  ],
  Pad: padShape,
  Shape: (c) => {
    const rank = c.input(0).shape.length;
    const start = Math.max(0, normClamp(intAttr(c.attrs, 'start', 0), rank));
    const end = normClamp(intAttr(c.attrs, 'end', rank), rank);
    return [{ dtype: 'int64', shape: [Math.max(0, end - start)] }];
  },
  // Opset-23 fused ops of the inference graph (model/llama-graph.ts with `fused`).
  RMSNormalization: same,
  RotaryEmbedding: same,
  Attention: attentionShapes,
  ConstantOfShape: (c) => [{ dtype: tensorDtype(c.attrs.value, c.where), shape: constInts(c, 0, 'shape') }],
  Range: (c) => {
    const [start, limit, delta] = [c.ints(0)?.[0], c.ints(1)?.[0], c.ints(2)?.[0]];
    if (start === undefined || limit === undefined || delta === undefined) {
      throw new Error(`${c.where}: Range bounds must be constants; pass shapes`);
    }
    return [{ dtype: c.input(0).dtype, shape: [Math.max(0, Math.ceil((limit - start) / delta))] }];
  },
};

function normClamp(v: number, rank: number): number {
  return Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
}
