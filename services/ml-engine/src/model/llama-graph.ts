/**
 * The Llama decoder as an ONNX graph, written once for both uses: the training graph (weights are graph
 * inputs, full sequences) and the inference graph (weights are initializers, with a KV cache). Read it
 * top to bottom like modeling_llama.py: embedding, then per layer RMSNorm -> attention -> residual ->
 * RMSNorm -> SwiGLU MLP -> residual, then the final norm and a head.
 *
 * Layout choices for speed on ORT's CPU kernels: the residual stream stays 2-D [batch*seq, hidden] so every
 * projection is one Gemm with transB (HF's [out, in] weights need no Transpose, and the Gemm gradient rules
 * need none either); grouped-query attention broadcasts K/V over the query group in MatMul instead of
 * materialising repeated heads.
 *
 * With `fused` (inference graphs only), RMSNorm, RoPE and attention are the standard opset-23 ops
 * RMSNormalization, RotaryEmbedding and Attention: one kernel each instead of 5-20 small ones, which is most
 * of the cost of a one-token decode step. Training graphs keep the decomposed ops, the ones the autodiff
 * differentiates.
 */

import type { Dim } from '../onnx/dims.js';
import type { GraphBuilder, KvPair } from '../onnx/graph-builder.js';
import type { Value } from '../onnx/graph-types.js';
import { headDim as headDimOf, type LlamaConfig } from './config.js';
import { ropeCaches, ropeDivisors, ropeTables } from './rope.js';
import { hasBias, layerPrefix, type Projection } from './weights.js';

/** Returns the graph value of a parameter: a graph input when training, an initializer for inference. */
export type WeightSource = (name: string) => Value;

/** Additive mask value; finite so a fully masked row (a padding query) softmaxes to uniform, never NaN. */
const MASKED = -1e9;

export type { KvPair };

export interface DecoderInputs {
  /** [batch, seq] int64 */
  inputIds: Value;
  /** [batch, kvLen] int64, 1 for real tokens; kvLen = past + seq. */
  attentionMask: Value;
  /** [batch, seq] or [1, seq] int64 */
  positionIds: Value;
  /** Per layer [batch, kv_heads, past, head_dim]; omit for full-sequence (training) graphs. */
  past?: KvPair[];
}

export interface DecoderOptions {
  /** Emit the opset-23 fused ops (the graph then needs opset >= 23); default false, the decomposed ops. */
  fused?: boolean;
}

export interface DecoderOutputs {
  /** [batch*seq, hidden] ([batch, seq, hidden] on the fused path), before the final RMSNorm. */
  hidden: Value;
  /** Per layer [batch, kv_heads, past+seq, head_dim] (inference graphs). */
  presents: KvPair[];
}

export function linear(g: GraphBuilder, x: Value, weight: Value): Value {
  return g.gemm(x, weight, undefined, { transB: true });
}

/**
 * x @ weight^T for either stream: a Gemm on the 2-D one; on the fused path's 3-D [batch, seq, hidden] one, a
 * MatMul with the weight transposed in the graph (ORT folds the Transpose of an initializer when it loads
 * the model), so no Reshape runs between the projections and the fused ops.
 */
function project(g: GraphBuilder, x: Value, weight: Value): Value {
  return x.shape.length === 2 ? linear(g, x, weight) : g.matMul(x, g.transpose(weight, [1, 0]));
}

/** x times the layer's projection `name` (HF's nn.Linear), plus its bias when the config gives it one. */
function projection(
  g: GraphBuilder,
  c: LlamaConfig,
  w: WeightSource,
  p: string,
  name: Projection,
  x: Value,
): Value {
  const y = project(g, x, w(`${p}.${name}.weight`));
  return hasBias(c, name) ? g.add(y, w(`${p}.${name}.bias`)) : y;
}

export function rmsNorm(g: GraphBuilder, x: Value, weight: Value, eps: number, fused = false): Value {
  if (fused) return g.rmsNormalization(x, weight, eps);
  const meanSquare = g.reduceMean(g.mul(x, x), [-1]);
  const inv = g.reciprocal(g.sqrt(g.add(meanSquare, eps)));
  return g.mul(g.mul(x, inv), weight);
}

/** [batch, seq] of `ids` followed by the given trailing dims, as an int64 shape tensor for Reshape. */
function shapeWith(g: GraphBuilder, ids: Value, trailing: number[]): Value {
  return g.concat([g.shapeOf(ids), g.int64s(trailing)], 0);
}

function reshapeDyn(g: GraphBuilder, x: Value, shape: Value, target: Dim[]): Value {
  return g.op('Reshape', [x, shape], {}, { shapes: [target] });
}

/** Additive attention bias [batch, 1, 1, seq, kvLen]: causal (query i sees keys <= past + i) and padding. */
export function attentionBias(g: GraphBuilder, inputIds: Value, attentionMask: Value): Value {
  const [batch, seq] = inputIds.shape as [Dim, Dim];
  const kvLen = attentionMask.shape[1] as Dim;
  const scalarOf = (v: Value): Value => g.squeeze(v, [0]);
  const seqLen = g.op('Shape', [inputIds], { start: 1, end: 2 });
  const kvLenT = g.op('Shape', [attentionMask], { start: 1, end: 2 });
  const queryPos = g.op(
    'Range',
    [scalarOf(g.sub(kvLenT, seqLen)), scalarOf(kvLenT), g.constant([1], [], 'int64')],
    {},
    { shapes: [[seq]], dtypes: ['int64'] },
  );
  const keyPos = g.op(
    'Range',
    [g.constant([0], [], 'int64'), scalarOf(kvLenT), g.constant([1], [], 'int64')],
    {},
    { shapes: [[kvLen]], dtypes: ['int64'] },
  );
  const future = g.greater(g.unsqueeze(keyPos, [0]), g.unsqueeze(queryPos, [1]));
  const causal = g.where(future, g.scalar(MASKED), 0);
  const bias = g.add(g.unsqueeze(paddingBias(g, attentionMask), [1, 2, 3]), causal);
  if (bias.shape.length !== 5 || bias.shape[0] !== batch)
    throw new Error(`attention bias has shape [${bias.shape.join(', ')}]`);
  return bias;
}

/** [batch, kvLen]: MASKED where attention_mask is 0, else 0. */
function paddingBias(g: GraphBuilder, attentionMask: Value): Value {
  return g.where(g.equal(attentionMask, g.constant([0], [], 'int64')), g.scalar(MASKED), 0);
}

export interface Rope {
  cos: Value;
  sin: Value;
}

/** The decomposed RoPE tables at the given positions: cos and signed sin, [batch, seq, 1, head_dim]. */
export function ropeAt(g: GraphBuilder, c: LlamaConfig, positionIds: Value): Rope {
  const hd = headDimOf(c);
  const t = ropeTables(ropeDivisors(c), c.max_position_embeddings);
  const table = (data: number[]): Value =>
    g.unsqueeze(g.gather(g.constant(data, [c.max_position_embeddings, hd]), positionIds, 0), [2]);
  return { cos: table(t.cos), sin: table(t.sinSigned) };
}

/** Decomposed RoPE (HF rotate_half) of x [batch, seq, heads, head_dim]. */
export function applyRope(g: GraphBuilder, x: Value, rope: Rope): Value {
  const hd = x.shape[3] as number;
  const [x1, x2] = g.split(x, [hd / 2, hd / 2], -1) as [Value, Value];
  return g.add(g.mul(x, rope.cos), g.mul(g.concat([x2, x1], -1), rope.sin));
}

function attention(
  g: GraphBuilder,
  c: LlamaConfig,
  p: string,
  x: Value,
  ids: Value,
  bias: Value,
  rope: Rope,
  w: WeightSource,
  past?: KvPair,
): { out: Value; present: KvPair } {
  const hd = headDimOf(c);
  const heads = c.num_attention_heads;
  const kvHeads = c.num_key_value_heads;
  const group = heads / kvHeads;
  const [batch, seq] = ids.shape as [Dim, Dim];
  const q = projection(g, c, w, p, 'self_attn.q_proj', x);
  const k = projection(g, c, w, p, 'self_attn.k_proj', x);
  const v = projection(g, c, w, p, 'self_attn.v_proj', x);
  const q4 = applyRope(g, reshapeDyn(g, q, shapeWith(g, ids, [heads, hd]), [batch, seq, heads, hd]), rope);
  const k4 = applyRope(
    g,
    reshapeDyn(g, k, shapeWith(g, ids, [kvHeads, hd]), [batch, seq, kvHeads, hd]),
    rope,
  );
  const v4 = reshapeDyn(g, v, shapeWith(g, ids, [kvHeads, hd]), [batch, seq, kvHeads, hd]);
  // Heads h = kv * group + j share K/V head kv, as in HF's repeat_kv.
  const q5 = g.transpose(
    reshapeDyn(g, g.mul(q4, 1 / Math.sqrt(hd)), shapeWith(g, ids, [kvHeads, group, hd]), [
      batch,
      seq,
      kvHeads,
      group,
      hd,
    ]),
    [0, 2, 3, 1, 4],
  );
  let keys = g.transpose(k4, [0, 2, 1, 3]);
  let values = g.transpose(v4, [0, 2, 1, 3]);
  if (past) {
    keys = g.concat([past.key, keys], 2);
    values = g.concat([past.value, values], 2);
  }
  const keysT = g.unsqueeze(g.transpose(keys, [0, 1, 3, 2]), [2]);
  const scores = g.add(g.matMul(q5, keysT), bias);
  const probs = g.softmax(scores, -1);
  const ctx = g.matMul(probs, g.unsqueeze(values, [2]));
  const merged = g.reshape(g.transpose(ctx, [0, 3, 1, 2, 4]), [-1, heads * hd]);
  return { out: projection(g, c, w, p, 'self_attn.o_proj', merged), present: { key: keys, value: values } };
}

/** RoPE for the fused path: RotaryEmbedding's cos/sin caches and the position ids that index them. */
interface FusedRope {
  cos: Value;
  sin: Value;
  positionIds: Value;
}

function fusedRope(g: GraphBuilder, c: LlamaConfig, positionIds: Value): FusedRope {
  const hd = headDimOf(c);
  const t = ropeCaches(ropeDivisors(c), c.max_position_embeddings);
  return {
    cos: g.constant(t.cos, [c.max_position_embeddings, hd / 2]),
    sin: g.constant(t.sin, [c.max_position_embeddings, hd / 2]),
    positionIds,
  };
}

/**
 * The same attention as `attention` on the 3-D stream x [batch, seq, hidden], with RotaryEmbedding and
 * Attention (opset 23) doing the work: q, k and v stay [batch, seq, heads * head_dim], the layout both ops
 * take, and the presents come out [batch, kv_heads, past + seq, head_dim] as the optimum signature has them.
 */
function fusedAttention(
  g: GraphBuilder,
  c: LlamaConfig,
  p: string,
  x: Value,
  bias: Value,
  rope: FusedRope,
  w: WeightSource,
  past?: KvPair,
): { out: Value; present?: KvPair } {
  const heads = c.num_attention_heads;
  const kvHeads = c.num_key_value_heads;
  const proj = (name: 'q_proj' | 'k_proj' | 'v_proj'): Value =>
    projection(g, c, w, p, `self_attn.${name}`, x);
  const rotate = (v: Value, n: number): Value =>
    g.rotaryEmbedding(v, rope.cos, rope.sin, rope.positionIds, n);
  const q = rotate(proj('q_proj'), heads);
  const { y, present } = g.attention(q, rotate(proj('k_proj'), kvHeads), proj('v_proj'), {
    mask: bias,
    causal: true,
    past,
    qHeads: heads,
    kvHeads,
  });
  const out = projection(g, c, w, p, 'self_attn.o_proj', y);
  return present ? { out, present } : { out };
}

type LayerAttention = (p: string, x: Value, past?: KvPair) => { out: Value; present?: KvPair };

/** Attention for one layer, with what every layer shares (mask, RoPE tables) built once here. */
function layerAttention(
  g: GraphBuilder,
  c: LlamaConfig,
  w: WeightSource,
  inputs: DecoderInputs,
  fused: boolean,
): LayerAttention {
  const ids = inputs.inputIds;
  if (fused) {
    // The op's is_causal masks the future, so the bias holds only padding, expanded to [batch, 1, seq, kvLen]
    // (ORT's kernel wants the mask's query dim spelled out, not broadcast).
    const [batch, seq] = ids.shape as [Dim, Dim];
    const kvLen = inputs.attentionMask.shape[1] as Dim;
    const queryDims = g.concat(
      [g.int64s([1, 1]), g.op('Shape', [ids], { start: 1, end: 2 }), g.int64s([1])],
      0,
    );
    const bias = g.op(
      'Expand',
      [g.unsqueeze(paddingBias(g, inputs.attentionMask), [1, 2]), queryDims],
      {},
      {
        shapes: [[batch, 1, seq, kvLen]],
      },
    );
    const rope = fusedRope(g, c, inputs.positionIds);
    return (p, x, past) => fusedAttention(g, c, p, x, bias, rope, w, past);
  }
  const bias = attentionBias(g, ids, inputs.attentionMask);
  const rope = ropeAt(g, c, inputs.positionIds);
  return (p, x, past) => attention(g, c, p, x, ids, bias, rope, w, past);
}

function mlp(g: GraphBuilder, c: LlamaConfig, p: string, x: Value, w: WeightSource): Value {
  const gate = projection(g, c, w, p, 'mlp.gate_proj', x);
  const up = projection(g, c, w, p, 'mlp.up_proj', x);
  const silu = g.mul(gate, g.sigmoid(gate));
  return projection(g, c, w, p, 'mlp.down_proj', g.mul(silu, up));
}

/** The decoder body; returns the residual stream after the last layer (before the final norm). */
export function decoder(
  g: GraphBuilder,
  c: LlamaConfig,
  w: WeightSource,
  inputs: DecoderInputs,
  o: DecoderOptions = {},
): DecoderOutputs {
  const fused = o.fused === true;
  const ids = inputs.inputIds;
  const embedded = g.gather(w('model.embed_tokens.weight'), ids, 0);
  // The fused path keeps the stream 3-D, the layout of the fused ops; the decomposed one flattens it for Gemm.
  let h = fused ? embedded : g.reshape(embedded, [-1, c.hidden_size]);
  const attend = layerAttention(g, c, w, inputs, fused);
  const presents: KvPair[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = layerPrefix(i);
    g.scope(`layer${i}`, () => {
      const x = rmsNorm(g, h, w(`${p}.input_layernorm.weight`), c.rms_norm_eps, fused);
      const attn = attend(p, x, inputs.past?.[i]);
      if (attn.present) presents.push(attn.present);
      h = g.add(h, attn.out);
      const normed = rmsNorm(g, h, w(`${p}.post_attention_layernorm.weight`), c.rms_norm_eps, fused);
      h = g.add(h, mlp(g, c, p, normed, w));
    });
  }
  return { hidden: h, presents };
}

/** LM head: [batch*seq, hidden] (or the fused path's [batch, seq, hidden]) -> logits [batch, seq, vocab]. */
export function lmHead(
  g: GraphBuilder,
  c: LlamaConfig,
  w: WeightSource,
  hidden: Value,
  inputIds: Value,
  o: DecoderOptions = {},
): Value {
  const normed = rmsNorm(g, hidden, w('model.norm.weight'), c.rms_norm_eps, o.fused);
  const head = c.tie_word_embeddings ? w('model.embed_tokens.weight') : w('lm_head.weight');
  if (normed.shape.length === 3) return project(g, normed, head);
  const [batch, seq] = inputIds.shape as [Dim, Dim];
  return reshapeDyn(g, linear(g, normed, head), shapeWith(g, inputIds, [c.vocab_size]), [
    batch,
    seq,
    c.vocab_size,
  ]);
}

/**
 * Scalar head (Bradley-Terry reward model): the score at each row's last real token. Rows are right-padded,
 * so that token sits at sum(attention_mask) - 1, as HF's sequence classification finds it.
 */
export function scalarHead(
  g: GraphBuilder,
  c: LlamaConfig,
  w: WeightSource,
  hidden: Value,
  inputIds: Value,
  attentionMask: Value,
  o: DecoderOptions = {},
): Value {
  const batch = inputIds.shape[0] as Dim;
  const one = g.constant([1], [], 'int64');
  const last = g.sub(g.reduceSum(attentionMask, [1], false), one);
  const batchSize = g.squeeze(g.op('Shape', [inputIds], { start: 0, end: 1 }), [0]);
  const seqLen = g.squeeze(g.op('Shape', [inputIds], { start: 1, end: 2 }), [0]);
  const rows = g.op(
    'Range',
    [g.constant([0], [], 'int64'), batchSize, one],
    {},
    { shapes: [[batch]], dtypes: ['int64'] },
  );
  const flat = hidden.shape.length === 3 ? g.reshape(hidden, [-1, c.hidden_size]) : hidden;
  const picked = g.gather(flat, g.add(g.mul(rows, seqLen), last), 0);
  const normed = rmsNorm(g, picked, w('model.norm.weight'), c.rms_norm_eps, o.fused);
  return g.reshape(linear(g, normed, w('score.weight')), [-1]);
}
