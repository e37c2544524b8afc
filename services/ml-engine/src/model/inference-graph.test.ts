import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { tinyLlamaConfig } from '../../test/fixtures/tiny-llama.js';
import { Rng } from '../random/rng.js';
import { buildInferenceModel } from './inference-graph.js';
import { referenceForward } from './llama-reference.js';
import { initWeights } from './weights.js';

const small = { initializer_range: 0.2 };
const i64 = (xs: number[], dims: number[]): ort.Tensor =>
  new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), dims);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

function emptyPast(layers: number, batch: number, kv: number, hd: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let i = 0; i < layers; i++) {
    for (const part of ['key', 'value'])
      feeds[`past_key_values.${i}.${part}`] = new ort.Tensor('float32', new Float32Array(0), [
        batch,
        kv,
        0,
        hd,
      ]);
  }
  return feeds;
}

test('LM graph matches the HF-semantics reference, with padding and GQA', async () => {
  const c = tinyLlamaConfig(small);
  const w = initWeights(c, new Rng(11));
  const session = await ort.InferenceSession.create(buildInferenceModel(c, w));
  const rows = [
    [5, 9, 13, 2, 7, 30],
    [8, 3, 21, 0, 0, 0],
  ];
  const lengths = [6, 3];
  const out = await session.run({
    input_ids: i64(rows.flat(), [2, 6]),
    attention_mask: i64(
      rows.flatMap((r, b) => r.map((_, t) => (t < (lengths[b] as number) ? 1 : 0))),
      [2, 6],
    ),
    position_ids: i64([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5], [2, 6]),
    ...emptyPast(2, 2, 2, 8),
  });
  const logits = out.logits?.data as Float32Array;
  rows.forEach((r, b) => {
    const ref = referenceForward(c, w, r.slice(0, lengths[b]));
    ref.logits.forEach((row, t) => {
      const got = logits.subarray((b * 6 + t) * 40, (b * 6 + t + 1) * 40);
      assert.ok(maxAbsDiff(got, row) < 1e-4, `row ${b} position ${t}: ${maxAbsDiff(got, row)}`);
    });
  });
});

test('decoding with the KV cache equals the full forward pass', async () => {
  const c = tinyLlamaConfig(small);
  const w = initWeights(c, new Rng(12));
  const session = await ort.InferenceSession.create(buildInferenceModel(c, w));
  const ids = [4, 17, 9, 33, 12, 6];
  const full = referenceForward(c, w, ids).logits;
  let feeds: Record<string, ort.Tensor> = {
    input_ids: i64(ids.slice(0, 3), [1, 3]),
    attention_mask: i64([1, 1, 1], [1, 3]),
    position_ids: i64([0, 1, 2], [1, 3]),
    ...emptyPast(2, 1, 2, 8),
  };
  for (let t = 3; t <= ids.length; t++) {
    const out = await session.run(feeds);
    const logits = out.logits?.data as Float32Array;
    const last = logits.subarray(logits.length - 40);
    assert.ok(maxAbsDiff(last, full[t - 1] as Float64Array) < 1e-4, `step ${t}`);
    if (t === ids.length) break;
    feeds = {
      input_ids: i64([ids[t] as number], [1, 1]),
      attention_mask: i64(new Array(t + 1).fill(1), [1, t + 1]),
      position_ids: i64([t], [1, 1]),
    };
    for (let i = 0; i < 2; i++) {
      for (const part of ['key', 'value'])
        feeds[`past_key_values.${i}.${part}`] = out[`present.${i}.${part}`] as ort.Tensor;
    }
  }
});

test('scalar head scores the last real token of right-padded rows', async () => {
  const c = tinyLlamaConfig({ ...small, architectures: ['LlamaForSequenceClassification'] });
  const w = initWeights(c, new Rng(13));
  const session = await ort.InferenceSession.create(buildInferenceModel(c, w));
  const out = await session.run({
    input_ids: i64([5, 9, 13, 2, 8, 3, 2, 2], [2, 4]),
    attention_mask: i64([1, 1, 1, 1, 1, 1, 0, 0], [2, 4]),
  });
  const scores = out.scores?.data as Float32Array;
  assert.deepEqual(out.scores?.dims, [2]);
  assert.ok(Math.abs((scores[0] as number) - referenceForward(c, w, [5, 9, 13, 2]).score) < 1e-4);
  assert.ok(Math.abs((scores[1] as number) - referenceForward(c, w, [8, 3]).score) < 1e-4);
});
