/**
 * Whole-model gradient checks: every weight of a tiny Llama (GQA, tied and untied heads, padding, biases,
 * an explicit head_dim, rope scaling) under each training objective, analytic gradients against central differences in float64.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkGradients } from '../autodiff/gradient-check.js';
import { parseLlamaConfig } from '../model/config.js';
import { initWeights } from '../model/weights.js';
import { Rng } from '../random/rng.js';
import type { TensorValue } from '../runtime/ort-session.js';
import { addTrainingLoss, type Objective } from './training-graph.js';

const tiny = {
  hidden_size: 8,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  intermediate_size: 12,
  vocab_size: 11,
  num_hidden_layers: 2,
  max_position_embeddings: 8,
  initializer_range: 0.4,
};
const i64 = (xs: number[], dims: number[]): TensorValue => ({
  data: BigInt64Array.from(xs.map(BigInt)),
  dims,
});
const f64 = (xs: number[], dims: number[]): TensorValue => ({ data: Float64Array.from(xs), dims });

// Two right-padded rows of length 5 and 3 (4 rows for pairwise objectives: chosen, chosen, rejected, rejected).
const ids = [3, 5, 7, 9, 4, 6, 2, 8, 2, 2, 3, 5, 1, 2, 2, 6, 9, 10, 7, 2];
const mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0];

function dataFeeds(objective: Objective, rows: number): Record<string, TensorValue> {
  const n = rows * 5;
  const feeds: Record<string, TensorValue> = {
    input_ids: i64(ids.slice(0, n), [rows, 5]),
    attention_mask: i64(mask.slice(0, n), [rows, 5]),
  };
  if (objective === 'rm') return feeds;
  const labels = ids.slice(0, n).map((_, i) => (i % 5 === 4 ? 0 : (ids[i + 1] as number)));
  const lossMask = mask.slice(0, n).map((m, i) => (i % 5 === 4 ? 0 : m * (mask[i + 1] as number)));
  feeds.labels = i64(labels, [rows, 5]);
  feeds.loss_mask = f64(lossMask, [rows, 5]);
  if (objective === 'dpo') {
    feeds.reference_logps = f64([-6, -4.5, -5, -7], [rows]);
    feeds.nll_mask = f64(
      lossMask.map((m, i) => (i < n / 2 ? m : 0)),
      [rows, 5],
    );
  }
  return feeds;
}

for (const [objective, extra, rows] of [
  ['lm', {}, 2],
  ['lm', { tie_word_embeddings: false }, 2],
  ['rm', { architectures: ['LlamaForSequenceClassification'] }, 4],
  ['dpo', {}, 4],
  // Projection biases (Llama's attention_bias and mlp_bias; Qwen2's q/k/v biases) and rope scaling.
  ['dpo', { attention_bias: true, mlp_bias: true }, 4],
  ['lm', { model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], head_dim: 6 }, 2],
  [
    'lm',
    {
      rope_scaling: {
        rope_type: 'llama3',
        factor: 4,
        low_freq_factor: 1,
        high_freq_factor: 2,
        original_max_position_embeddings: 4,
      },
    },
    2,
  ],
] as const) {
  test(`gradient check of the whole model: ${objective} ${JSON.stringify(extra)}`, async () => {
    const c = parseLlamaConfig({ ...tiny, ...extra });
    const weights = initWeights(c, new Rng(21));
    const feeds = dataFeeds(objective, rows);
    for (const [name, w] of weights) {
      const spec = [...weights.keys()].indexOf(name);
      assert.ok(spec >= 0);
      feeds[name] = { data: Float64Array.from(w), dims: [] };
    }
    const results = await checkGradients(
      (g) => {
        const t = addTrainingLoss(g, c, objective, {
          beta: 0.5,
          lossType: 'sigmoid',
          labelSmoothing: 0.1,
          nllWeight: 1,
        });
        // Feed dims come from the graph's weight inputs.
        t.weights.forEach((v) => {
          (feeds[v.name] as { dims: readonly number[] }).dims = v.shape as number[];
        });
        if (!t.loss) throw new Error('no loss');
        return { loss: t.loss, wrt: t.weights };
      },
      feeds,
      { coordinates: 6, seed: 3 },
    );
    assert.equal(results.length, weights.size);
    for (const r of results) {
      assert.ok(r.scale > 1e-8, `${r.name}: gradient is zero, the check would prove nothing`);
      assert.ok(
        r.relError < 1e-5,
        `${r.name}: relative error ${r.relError.toExponential(2)} (scale ${r.scale.toExponential(2)})`,
      );
    }
  });
}
