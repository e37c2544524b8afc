/**
 * GraphBuilder: the core plus one typed helper per op, so model code reads like array code
 * (`g.matMul(x, w)`, `g.mul(x, 0.5)`). Numbers given where a tensor is expected become scalar constants of
 * the other operand's dtype, so the same model code builds float32 and float64 graphs.
 */
import { type Dim, isStatic, type Shape } from './dims.js';
import { GraphCore } from './graph-core.js';
import type { Value } from './graph-types.js';
import { type DType, dataTypeCode, tensorFromData, typedArray } from './tensor-data.js';

export type Operand = Value | number;

export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
}

/** A layer's keys and values, e.g. a KV cache entry. */
export interface KvPair {
  key: Value;
  value: Value;
}

export type ScatterReduction = 'none' | 'add' | 'mul';

export class GraphBuilder extends GraphCore {
  // ---- elementwise ----
  add(a: Operand, b: Operand): Value {
    return this.binary('Add', a, b);
  }
  sub(a: Operand, b: Operand): Value {
    return this.binary('Sub', a, b);
  }
  mul(a: Operand, b: Operand): Value {
    return this.binary('Mul', a, b);
  }
  div(a: Operand, b: Operand): Value {
    return this.binary('Div', a, b);
  }
  pow(a: Value, exponent: Operand): Value {
    return this.op('Pow', [a, this.lift(exponent, a)]);
  }
  neg(x: Value): Value {
    return this.op('Neg', [x]);
  }
  sqrt(x: Value): Value {
    return this.op('Sqrt', [x]);
  }
  reciprocal(x: Value): Value {
    return this.op('Reciprocal', [x]);
  }
  exp(x: Value): Value {
    return this.op('Exp', [x]);
  }
  log(x: Value): Value {
    return this.op('Log', [x]);
  }
  tanh(x: Value): Value {
    return this.op('Tanh', [x]);
  }
  sigmoid(x: Value): Value {
    return this.op('Sigmoid', [x]);
  }
  relu(x: Value): Value {
    return this.op('Relu', [x]);
  }
  /**
   * log(1 + e^x). ORT's CPU Softplus kernel is float32-only, so float64 graphs (gradient checks) get the
   * same function in its overflow-safe form relu(x) + log(1 + e^-|x|).
   */
  softplus(x: Value): Value {
    if (x.dtype === 'float32') return this.op('Softplus', [x]);
    return this.add(this.relu(x), this.log(this.add(this.exp(this.neg(this.abs(x))), 1)));
  }
  abs(x: Value): Value {
    return this.op('Abs', [x]);
  }
  identity(x: Value): Value {
    return this.op('Identity', [x]);
  }
  /** Elementwise sum of any number of broadcastable tensors (one node). */
  sum(xs: readonly Value[]): Value {
    if (xs.length === 1) return xs[0] as Value;
    return xs.length === 2 ? this.op('Add', xs) : this.op('Sum', xs);
  }
  cast(x: Value, to: DType): Value {
    return x.dtype === to ? x : this.op('Cast', [x], { to: dataTypeCode(to) });
  }
  where(cond: Value, x: Operand, y: Operand): Value {
    const like = typeof x === 'number' ? (y as Value) : x;
    return this.op('Where', [cond, this.lift(x, like), this.lift(y, like)]);
  }
  equal(a: Operand, b: Operand): Value {
    return this.binary('Equal', a, b);
  }
  less(a: Operand, b: Operand): Value {
    return this.binary('Less', a, b);
  }
  greater(a: Operand, b: Operand): Value {
    return this.binary('Greater', a, b);
  }
  not(x: Value): Value {
    return this.op('Not', [x]);
  }

  // ---- linear algebra and normalisation ----
  matMul(a: Value, b: Value): Value {
    return this.op('MatMul', [a, b]);
  }
  gemm(a: Value, b: Value, c?: Value, o: GemmOptions = {}): Value {
    return this.op('Gemm', c ? [a, b, c] : [a, b], {
      transA: o.transA ? 1 : undefined,
      transB: o.transB ? 1 : undefined,
      alpha: o.alpha,
      beta: o.beta,
    });
  }
  softmax(x: Value, axis = -1): Value {
    return this.op('Softmax', [x], { axis });
  }
  logSoftmax(x: Value, axis = -1): Value {
    return this.op('LogSoftmax', [x], { axis });
  }

  // ---- fused transformer ops (opset 23; inference graphs only: the autodiff has no rules for them) ----
  /** x / sqrt(mean(x^2 over the last axis) + eps) * scale. */
  rmsNormalization(x: Value, scale: Value, epsilon: number): Value {
    return this.op('RMSNormalization', [x, scale], { axis: -1, epsilon });
  }
  /**
   * RoPE in the rotate-half convention (interleaved 0) on x [batch, seq, heads * head_dim]; cos and sin are
   * [max_position, head_dim / 2] tables indexed by positionIds [batch, seq].
   */
  rotaryEmbedding(x: Value, cos: Value, sin: Value, positionIds: Value, heads: number): Value {
    return this.op('RotaryEmbedding', [x, cos, sin, positionIds], { num_heads: heads });
  }
  /**
   * Scaled dot-product attention on q [batch, seq, qHeads * head_dim] and k, v [batch, kv_seq, kvHeads *
   * head_dim] (grouped-query when kvHeads < qHeads), with an additive mask broadcastable to [batch, qHeads,
   * seq, past + kv_seq]. With a past ([batch, kvHeads, past, head_dim] each) it also returns the presents,
   * past and new keys/values concatenated along the sequence. `causal`: query i sees keys up to past + i
   * (the causal diagonal aligned to the last key when a past is given, as in KV-cache decoding).
   */
  attention(
    q: Value,
    k: Value,
    v: Value,
    o: {
      mask?: Value | undefined;
      past?: KvPair | undefined;
      qHeads: number;
      kvHeads: number;
      causal?: boolean;
    },
  ): { y: Value; present?: KvPair } {
    const attrs = {
      q_num_heads: o.qHeads,
      kv_num_heads: o.kvHeads,
      is_causal: o.causal ? 1 : undefined,
    };
    if (!o.past) return { y: this.op('Attention', [q, k, v, o.mask], attrs) };
    const [y, key, value] = this.opN('Attention', [q, k, v, o.mask, o.past.key, o.past.value], 3, attrs) as [
      Value,
      Value,
      Value,
    ];
    return { y, present: { key, value } };
  }

  // ---- reductions ----
  reduceSum(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.op('ReduceSum', [x, this.int64s(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  reduceMean(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.op('ReduceMean', [x, this.int64s(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  reduceMax(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.op('ReduceMax', [x, this.int64s(axes)], { keepdims: keepdims ? 1 : 0 });
  }

  // ---- shape manipulation ----
  /** Reshape with ONNX semantics: 0 copies the input dim at that position, -1 takes the rest. */
  reshape(x: Value, dims: readonly number[]): Value {
    return this.op('Reshape', [x, this.int64s(dims)]);
  }
  transpose(x: Value, perm: readonly number[]): Value {
    return this.op('Transpose', [x], { perm });
  }
  unsqueeze(x: Value, axes: readonly number[]): Value {
    return this.op('Unsqueeze', [x, this.int64s(axes)]);
  }
  squeeze(x: Value, axes: readonly number[]): Value {
    return this.op('Squeeze', [x, this.int64s(axes)]);
  }
  concat(xs: readonly Value[], axis: number): Value {
    return xs.length === 1 ? (xs[0] as Value) : this.op('Concat', xs, { axis });
  }
  slice(
    x: Value,
    starts: readonly number[],
    ends: readonly number[],
    axes?: readonly number[],
    steps?: readonly number[],
  ): Value {
    const ins = [x, this.int64s(starts), this.int64s(ends)];
    if (axes) ins.push(this.int64s(axes));
    if (steps) ins.push(this.int64s(steps));
    return this.op('Slice', ins);
  }
  split(x: Value, sizes: readonly number[], axis: number): Value[] {
    return this.opN('Split', [x, this.int64s(sizes)], sizes.length, { axis });
  }
  gather(x: Value, indices: Value, axis = 0): Value {
    return this.op('Gather', [x, indices], { axis });
  }
  gatherElements(x: Value, indices: Value, axis: number): Value {
    return this.op('GatherElements', [x, indices], { axis });
  }
  scatterND(data: Value, indices: Value, updates: Value, reduction: ScatterReduction = 'none'): Value {
    return this.op('ScatterND', [data, indices, updates], {
      reduction: reduction === 'none' ? undefined : reduction,
    });
  }
  scatterElements(
    data: Value,
    indices: Value,
    updates: Value,
    axis: number,
    reduction: ScatterReduction = 'none',
  ): Value {
    return this.op('ScatterElements', [data, indices, updates], {
      axis,
      reduction: reduction === 'none' ? undefined : reduction,
    });
  }
  /** Broadcasts x to `shape` (numpy rules; 1 keeps the input dim). */
  expand(x: Value, shape: readonly number[]): Value {
    return this.op('Expand', [x, this.int64s(shape)]);
  }
  /** Constant-pads x; `pads` is [begin_0, ..., begin_n, end_0, ..., end_n]. */
  pad(x: Value, pads: readonly number[]): Value {
    return this.op('Pad', [x, this.int64s(pads)]);
  }
  shapeOf(x: Value): Value {
    return this.op('Shape', [x]);
  }

  /** A tensor filled with `value`, of a static shape or of `like`'s runtime shape. */
  filled(shape: Shape, value: number, dtype: DType, like?: Value): Value {
    const attr = { value: tensorFromData('', dtype, [1], typedArray(dtype, [value])) };
    if (isStatic(shape)) return this.op('ConstantOfShape', [this.int64s(shape)], attr);
    if (!like) throw new Error(`filled: shape [${shape.join(', ')}] is symbolic; pass a value of that shape`);
    return this.op('ConstantOfShape', [this.shapeOf(like)], attr, { shapes: [shape], dtypes: [dtype] });
  }
  zerosLike(x: Value): Value {
    return this.filled(x.shape, 0, x.dtype, x);
  }

  /**
   * Reshapes x to `target`, writing 0 where the dim is unchanged in place and -1 for at most one symbolic
   * dim, so symbolic shapes need no runtime Shape op; `like` (a value of that shape) is the fallback.
   */
  reshapeTo(x: Value, target: Shape, like?: Value): Value {
    if (target.length === x.shape.length && target.every((d, i) => d === x.shape[i])) return x;
    const spec = target.map((d: Dim, i) => (typeof d === 'number' ? d : x.shape[i] === d ? 0 : -1));
    if (spec.filter((d) => d === -1).length <= 1 && !target.includes(0)) {
      return this.op('Reshape', [x, this.int64s(spec)], {}, { shapes: [target] });
    }
    if (!like)
      throw new Error(
        `reshapeTo: cannot express [${target.join(', ')}] statically; pass a value of that shape`,
      );
    return this.op('Reshape', [x, this.shapeOf(like)], {}, { shapes: [target] });
  }

  private binary(op: string, a: Operand, b: Operand): Value {
    if (typeof a === 'number' && typeof b === 'number')
      throw new Error(`${op}: at least one operand must be a tensor`);
    const like = (typeof a === 'number' ? b : a) as Value;
    return this.op(op, [this.lift(a, like), this.lift(b, like)]);
  }

  private lift(x: Operand, like: Value): Value {
    return typeof x === 'number' ? this.scalar(x, like.dtype) : x;
  }
}
