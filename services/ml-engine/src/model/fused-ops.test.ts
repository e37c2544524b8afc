/**
 * The opset-23 fused ops of the inference graph against the decomposed ops of the training graph, on random
 * inputs: each op alone, then whole inference graphs through a left-padded prefill and decode steps on the
 * cache (a non-empty past).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tinyLlamaConfig } from '../../test/fixtures/tiny-llama.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { Rng } from '../random/rng.js';
import { OrtSession, type OutputTensor, type TensorValue } from '../runtime/ort-session.js';
import { headDim } from './config.js';
import { buildInferenceModel, INFERENCE_OPSET, NEXT_TOKEN_PROBS } from './inference-graph.js';
import { applyRope, rmsNorm, ropeAt } from './llama-graph.js';
import { ropeCaches, ropeDivisors } from './rope.js';
import { initWeights } from './weights.js';

const config = tinyLlamaConfig({ max_position_embeddings: 64, initializer_range: 0.3 });

const random = (rng: Rng, n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());
const i64 = (xs: number[], dims: number[]): TensorValue => ({
  data: BigInt64Array.from(xs.map(BigInt)),
  dims,
});

/** Largest |a - b| relative to the largest |b|: float32 rounding of differently ordered sums is ~1e-6. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
    scale = Math.max(scale, Math.abs(b[i] as number));
  }
  return diff / scale;
}

async function runBoth(
  g: GraphBuilder,
  feeds: Record<string, TensorValue>,
): Promise<Record<string, OutputTensor>> {
  const session = await OrtSession.create(g.toBytes({ opset: INFERENCE_OPSET }), { threads: 1 });
  try {
    return await session.run(feeds);
  } finally {
    await session.dispose();
  }
}

test('RMSNormalization equals the decomposed RMSNorm', async () => {
  const rng = new Rng(1);
  const g = new GraphBuilder({ name: 'norm' });
  const x = g.input('x', 'float32', [2, 5, 32]);
  const w = g.constant(random(rng, 32), [32]);
  g.output(rmsNorm(g, x, w, 1e-5, true), 'fused');
  g.output(rmsNorm(g, x, w, 1e-5), 'decomposed');
  // One row near zero, where eps matters.
  const data = random(rng, 320).map((v, i) => (i < 32 ? v * 1e-4 : 3 * v));
  const out = await runBoth(g, { x: { data, dims: [2, 5, 32] } });
  const diff = relDiff(out.fused?.data as Float32Array, out.decomposed?.data as Float32Array);
  assert.ok(diff < 1e-5, `relative difference ${diff}`);
});

test('RotaryEmbedding equals the decomposed RoPE (rotate_half), at padded and offset positions', async () => {
  const rng = new Rng(2);
  const hd = headDim(config);
  const heads = config.num_attention_heads;
  const g = new GraphBuilder({ name: 'rope' });
  const x = g.input('x', 'float32', [2, 5, heads * hd]);
  const positions = g.input('positions', 'int64', [2, 5]);
  const t = ropeCaches(ropeDivisors(config), config.max_position_embeddings);
  const cos = g.constant(t.cos, [config.max_position_embeddings, hd / 2]);
  const sin = g.constant(t.sin, [config.max_position_embeddings, hd / 2]);
  g.output(g.rotaryEmbedding(x, cos, sin, positions, heads), 'fused');
  const x4 = g.reshape(x, [2, 5, heads, hd]);
  g.output(g.reshape(applyRope(g, x4, ropeAt(g, config, positions)), [2, 5, heads * hd]), 'decomposed');
  const out = await runBoth(g, {
    x: { data: random(rng, 2 * 5 * heads * hd), dims: [2, 5, heads * hd] },
    // Row 0 left-padded (padding at position 0, as generate feeds it); row 1 after a past of 40 tokens.
    positions: i64([0, 0, 0, 1, 2, 40, 41, 42, 43, 63], [2, 5]),
  });
  const diff = relDiff(out.fused?.data as Float32Array, out.decomposed?.data as Float32Array);
  assert.ok(diff < 1e-5, `relative difference ${diff}`);
});

/** The values of x [batch, ..., n, ...] (n along `axis`) at the positions t where masks[b][t] is 1. */
function atReal(x: OutputTensor, masks: number[][], axis: number): number[] {
  const dims = x.dims;
  const batch = dims[0] as number;
  const outer = dims.slice(1, axis).reduce((a, b) => a * b, 1);
  const n = dims[axis] as number;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const data = x.data as Float32Array;
  const picked: number[] = [];
  for (let b = 0; b < batch; b++)
    for (let o = 0; o < outer; o++)
      for (let t = 0; t < n; t++)
        if (masks[b]?.[t] === 1)
          picked.push(
            ...data.subarray(((b * outer + o) * n + t) * inner, ((b * outer + o) * n + t + 1) * inner),
          );
  return picked;
}

test('the fused inference graph equals the decomposed one: left-padded prefill, then decode on the cache', async () => {
  const weights = initWeights(config, new Rng(3));
  const fused = await OrtSession.create(buildInferenceModel(config, weights), { threads: 1 });
  const decomposed = await OrtSession.create(buildInferenceModel(config, weights, { fused: false }), {
    threads: 1,
  });
  const kv = config.num_key_value_heads;
  const hd = headDim(config);
  const empty: TensorValue = { data: new Float32Array(0), dims: [2, kv, 0, hd] };
  let past: Record<string, TensorValue> = {};
  for (let i = 0; i < config.num_hidden_layers; i++) {
    past[`past_key_values.${i}.key`] = empty;
    past[`past_key_values.${i}.value`] = empty;
  }
  // Row 1 has two padding tokens on the left; its positions skip them.
  const masks = [
    [1, 1, 1, 1, 1],
    [0, 0, 1, 1, 1],
  ];
  let feeds: Record<string, TensorValue> = {
    input_ids: i64([5, 9, 13, 2, 7, 2, 2, 8, 3, 21], [2, 5]),
    attention_mask: i64(masks.flat(), [2, 5]),
    position_ids: i64([0, 1, 2, 3, 4, 0, 0, 0, 1, 2], [2, 5]),
    ...past,
  };
  const rng = new Rng(4);
  for (let step = 0; step < 4; step++) {
    const [a, b] = await Promise.all([fused.run(feeds), decomposed.run(feeds)]);
    // Padding queries are don't-cares (what they attend to differs: the fused op masks their future keys
    // too), so logits are compared at real tokens and presents at real keys, the only ones ever attended.
    const queries = step === 0 ? masks : [[1], [1]];
    for (const name of decomposed.outputNames) {
      const [x, y] = [a[name] as OutputTensor, b[name] as OutputTensor];
      assert.deepEqual(x.dims, y.dims, `step ${step} ${name}`);
      // next_token_probs is one row per sequence, from its last (always real) position.
      const [xs, ys] =
        name === NEXT_TOKEN_PROBS
          ? [Array.from(x.data as Float32Array), Array.from(y.data as Float32Array)]
          : name === 'logits'
            ? [atReal(x, queries, 1), atReal(y, queries, 1)]
            : [atReal(x, masks, 2), atReal(y, masks, 2)];
      assert.ok(xs.length > 0);
      const diff = relDiff(xs, ys);
      assert.ok(diff < 1e-5, `step ${step} ${name}: relative difference ${diff}`);
    }
    // The next step: one new token per row on the decomposed graph's presents.
    past = {};
    for (let i = 0; i < config.num_hidden_layers; i++) {
      for (const part of ['key', 'value'])
        past[`past_key_values.${i}.${part}`] = b[`present.${i}.${part}`] as OutputTensor;
    }
    for (const m of masks) m.push(1);
    feeds = {
      input_ids: i64([3 + rng.int(36), 3 + rng.int(36)], [2, 1]),
      attention_mask: i64(masks.flat(), [2, masks[0]?.length as number]),
      position_ids: i64([5 + step, 3 + step], [2, 1]),
      ...past,
    };
  }
  await fused.dispose();
  await decomposed.dispose();
});
