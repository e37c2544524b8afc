/**
 * Gradients of MatMul and Gemm, where the training step spends its FLOPs, so the forms are chosen for the
 * kernels: a weight gradient of a batched activation x [..., K] @ W [K, N] is ONE Gemm over the flattened
 * rows (transA=1, no Transpose node, no ReduceSum over batch dims); transposed operands of batched
 * MatMuls are read in place by FusedMatMul (see matMulT), so they cost no copy in float32.
 */
import type { GraphBuilder } from '../onnx/graph-builder.js';
import { floatAttr, intAttr, type Value } from '../onnx/graph-types.js';
import { sumTo } from './grad-shapes.js';

export type Grad = (() => Value) | undefined;

/** Memoises a thunk so that gradients of several inputs can share one intermediate. */
export function once<T>(f: () => T): () => T {
  let done = false;
  let v: T;
  return () => {
    if (!done) {
      v = f();
      done = true;
    }
    return v;
  };
}

function swapLast(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return perm;
}

/**
 * op(a) @ op(b) with op a transpose of the last two axes where asked. In float32 this is one
 * com.microsoft FusedMatMul: a separate Transpose node would be merged by ORT's transpose optimiser with
 * the model's own head transposes into a general permutation, which is a real copy and blocks the
 * Transpose+MatMul fusion. float64 (no FusedMatMul kernel) uses Transpose + MatMul.
 */
function matMulT(g: GraphBuilder, a: Value, transA: boolean, b: Value, transB: boolean): Value {
  if (a.dtype === 'float32') {
    const attrs = { transA: transA ? 1 : 0, transB: transB ? 1 : 0 };
    return g.op('FusedMatMul', [a, b], attrs, { domain: 'com.microsoft' });
  }
  const t = (x: Value, on: boolean) => (on ? g.transpose(x, swapLast(x.shape.length)) : x);
  return g.matMul(t(a, transA), t(b, transB));
}

/** d(a @ b): dA = dY @ B^T, dB = A^T @ dY, each summed over the batch dims its operand was broadcast on. */
export function matMulVjp(g: GraphBuilder, a: Value, b: Value, dy: Value): Grad[] {
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra === 1 || rb === 1) return vectorVjp(g, a, b, dy);
  const k = a.shape[ra - 1];
  const n = b.shape[rb - 1];
  const da = () => {
    if (ra === 2 && rb === 2) return g.gemm(dy, b, undefined, { transB: true });
    return sumTo(g, matMulT(g, dy, false, b, true), a);
  };
  const db = () => {
    if (ra === 2 && rb === 2) return g.gemm(a, dy, undefined, { transA: true });
    if (rb === 2 && typeof k === 'number' && typeof n === 'number') {
      // A weight shared over batch dims: fold them into the GEMM's inner dimension.
      return g.gemm(g.reshape(a, [-1, k]), g.reshape(dy, [-1, n]), undefined, { transA: true });
    }
    return sumTo(g, matMulT(g, a, true, dy, false), b);
  };
  return [da, db];
}

/** MatMul with a 1-D operand: promote it to a matrix as ONNX does, differentiate, and drop the axis again. */
function vectorVjp(g: GraphBuilder, a: Value, b: Value, dy: Value): Grad[] {
  const a1 = a.shape.length === 1;
  const b1 = b.shape.length === 1;
  const r = dy.shape.length;
  const axes = a1 && b1 ? [0, 1] : a1 ? [r - 1] : [r];
  const dy2 = once(() => g.unsqueeze(dy, axes));
  const a2 = once(() => (a1 ? g.unsqueeze(a, [0]) : a));
  const b2 = once(() => (b1 ? g.unsqueeze(b, [1]) : b));
  const inner = once(() => matMulVjp(g, a2(), b2(), dy2()));
  return [
    () => {
      const d = (inner()[0] as () => Value)();
      return a1 ? g.squeeze(d, [0]) : d;
    },
    () => {
      const d = (inner()[1] as () => Value)();
      return b1 ? g.squeeze(d, [d.shape.length - 1]) : d;
    },
  ];
}

/** d(alpha * op(A) @ op(B) + beta * C), every case a single Gemm with the right transpose flags. */
export function gemmVjp(
  g: GraphBuilder,
  attrs: Parameters<typeof intAttr>[0],
  ins: readonly Value[],
  dy: Value,
): Grad[] {
  const [a, b, c] = ins as [Value, Value, Value | undefined];
  const ta = intAttr(attrs, 'transA', 0) === 1;
  const tb = intAttr(attrs, 'transB', 0) === 1;
  // ONNX float attributes are float32: scale by the value the forward kernel actually used.
  const alpha = Math.fround(floatAttr(attrs, 'alpha', 1));
  const beta = Math.fround(floatAttr(attrs, 'beta', 1));
  const gemm = (x: Value, y: Value, transA: boolean, transB: boolean) =>
    g.gemm(x, y, undefined, { transA, transB, ...(alpha === 1 ? {} : { alpha }) });
  return [
    // dA = alpha dY op(B)^T (or its transpose when A was transposed).
    () => (ta ? gemm(b, dy, tb, true) : gemm(dy, b, false, !tb)),
    // dB = alpha op(A)^T dY (or its transpose when B was transposed).
    () => (tb ? gemm(dy, a, true, ta) : gemm(a, dy, !ta, false)),
    c ? () => sumTo(g, beta === 1 ? dy : g.mul(dy, beta), c) : undefined,
  ];
}
