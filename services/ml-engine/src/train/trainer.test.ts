/**
 * The training loop on real (tiny) models: SFT lowers held-out loss, a Bradley-Terry RM learns a clear
 * preference signal, DPO raises margin and accuracy, and plain SGD with lr 1 moves each weight by exactly
 * minus its gradient.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LlamaConfig, parseLlamaConfig } from '../model/config.js';
import { initWeights, type Weights } from '../model/weights.js';
import { Rng } from '../random/rng.js';
import { OrtSession } from '../runtime/ort-session.js';
import { trainBpe } from '../tokenizer/bpe-trainer.js';
import { type Tokenizer, tokenizerFromJson } from '../tokenizer/tokenizer.js';
import { lmFeeds } from './batches.js';
import { type Example, encodePair, encodeSft, type PairExample } from './examples.js';
import { sequenceLogps } from './logps.js';
import { defaultTrainOptions, type TrainOptions, trainModel } from './trainer.js';
import { buildTrainingGraph, gradName } from './training-graph.js';

const subjects = ['the film', 'the plot', 'the music', 'the cast', 'the ending'];
const good = ['great', 'superb', 'lovely', 'brilliant'];
const bad = ['awful', 'dull', 'boring', 'weak'];

function sentences(rng: Rng, n: number): { prompt: string; completion: string; positive: boolean }[] {
  return Array.from({ length: n }, () => {
    const positive = rng.uniform() < 0.5;
    const adj = (positive ? good : bad)[rng.int(4)] as string;
    return { prompt: subjects[rng.int(5)] as string, completion: ` was ${adj} .`, positive };
  });
}

function setup(head: 'lm' | 'scalar' = 'lm'): { tok: Tokenizer; config: LlamaConfig; weights: Weights } {
  const corpus = sentences(new Rng(1), 300).map((s) => s.prompt + s.completion);
  const tok = tokenizerFromJson(trainBpe(corpus, { vocabSize: 300 }));
  const config = parseLlamaConfig({
    architectures: [head === 'lm' ? 'LlamaForCausalLM' : 'LlamaForSequenceClassification'],
    hidden_size: 32,
    intermediate_size: 64,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
    vocab_size: tok.vocabSize,
    max_position_embeddings: 32,
  });
  return { tok, config, weights: initWeights(config, new Rng(2)) };
}

const options = (o: Partial<TrainOptions>): TrainOptions => ({
  ...defaultTrainOptions,
  warmupRatio: 0,
  ...o,
});

async function meanNll(config: LlamaConfig, weights: Weights, rows: Example[], pad: number): Promise<number> {
  const logps = await sequenceLogps(config, weights, rows, pad);
  const tokens = rows.reduce((s, r) => s + r.targets.filter(Boolean).length, 0);
  return -logps.reduce((s, v) => s + v, 0) / tokens;
}

test('SFT lowers held-out loss', async () => {
  const { tok, config, weights } = setup();
  const encode = (rs: ReturnType<typeof sentences>) =>
    rs.map((r) =>
      encodeSft(
        tok,
        { kind: 'prompt-completion', prompt: { text: r.prompt }, completion: { text: r.completion } },
        32,
      ),
    );
  const train = encode(sentences(new Rng(3), 256));
  const heldOut = encode(sentences(new Rng(4), 64));
  const before = await meanNll(config, weights, heldOut, tok.padId);
  const r = await trainModel({
    config,
    weights,
    padId: tok.padId,
    examples: train,
    options: options({ objective: 'sft', lr: 1e-2, epochs: 4, batchSize: 16 }),
  });
  const after = await meanNll(config, r.weights, heldOut, tok.padId);
  assert.equal(r.history.length, 64);
  assert.ok(after < before * 0.5, `held-out NLL ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  // The grammar leaves 5 x 8 choices of roughly equal odds over ~3 completion tokens: entropy ~ log(8)/3.
  assert.ok(after < 1.2, `held-out NLL ${after.toFixed(3)} should approach the task entropy`);
});

function pairs(tok: Tokenizer, n: number, seed: number): PairExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const subject = subjects[rng.int(5)] as string;
    return encodePair(
      tok,
      {
        prompt: { text: subject },
        chosen: { text: ` was ${good[rng.int(4)]} .` },
        rejected: { text: ` was ${bad[rng.int(4)]} .` },
      },
      32,
    );
  });
}

test('a Bradley-Terry reward model exceeds 90% held-out accuracy on a clear signal', async () => {
  const { tok, config, weights } = setup('scalar');
  const r = await trainModel({
    config,
    weights,
    padId: tok.padId,
    examples: pairs(tok, 256, 5),
    options: options({ objective: 'rm', lr: 3e-3, epochs: 2, batchSize: 16 }),
  });
  const held = pairs(tok, 64, 6);
  const graph = buildTrainingGraph(config, { objective: 'rm' });
  const session = await OrtSession.create(graph.graph.toBytes());
  const { rewardFeeds } = await import('./batches.js');
  const feeds = Object.fromEntries(
    graph.params.map((p) => [p.name, { data: r.weights.get(p.name) as Float32Array, dims: p.shape }]),
  );
  const out = await session.run({ ...feeds, ...rewardFeeds(held, tok.padId) }, ['accuracy']);
  await session.dispose();
  const accuracy = Number(out.accuracy?.data[0]);
  assert.ok(accuracy > 0.9, `held-out accuracy ${accuracy}`);
});

test('DPO raises the chosen-vs-rejected margin and accuracy (with the RPO NLL term)', async () => {
  const { tok, config, weights } = setup();
  const train = pairs(tok, 128, 7);
  const r = await trainModel({
    config,
    weights,
    padId: tok.padId,
    examples: train,
    options: options({
      objective: 'dpo',
      lr: 2e-3,
      epochs: 2,
      batchSize: 16,
      dpo: { beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0, nllWeight: 1 },
    }),
  });
  const first = r.history[0]?.metrics;
  const last = r.history.at(-1)?.metrics;
  assert.ok(first && last);
  assert.ok(Math.abs(first.margin as number) < 1e-3, 'the policy starts equal to its reference');
  assert.ok((last.margin as number) > 0.5, `margin ${last.margin}`);
  assert.ok((last.accuracy as number) > 0.9, `accuracy ${last.accuracy}`);
  assert.ok((last.dpo_loss as number) < (first.dpo_loss as number), 'the DPO loss falls');
});

test('one SGD step with lr 1 changes each weight by exactly minus its gradient', async () => {
  const { tok, config, weights } = setup();
  const examples = sentences(new Rng(8), 4).map((s) =>
    encodeSft(
      tok,
      { kind: 'prompt-completion', prompt: { text: s.prompt }, completion: { text: s.completion } },
      32,
    ),
  );
  const graph = buildTrainingGraph(config, { objective: 'lm' });
  const session = await OrtSession.create(graph.graph.toBytes());
  const feeds = Object.fromEntries(
    graph.params.map((p) => [p.name, { data: weights.get(p.name) as Float32Array, dims: p.shape }]),
  );
  const grads = await session.run({ ...feeds, ...lmFeeds(examples, tok.padId) });
  await session.dispose();
  const r = await trainModel({
    config,
    weights,
    padId: tok.padId,
    examples,
    options: options({
      objective: 'sft',
      optimizer: 'sgd',
      lr: 1,
      schedule: 'constant',
      maxGradNorm: 0,
      batchSize: 4,
      epochs: 1,
      shuffle: false,
    }),
  });
  for (const p of graph.params) {
    const before = weights.get(p.name) as Float32Array;
    const after = r.weights.get(p.name) as Float32Array;
    const g = grads[gradName(p.name)]?.data as Float32Array;
    for (let i = 0; i < before.length; i++) {
      assert.equal(after[i], Math.fround((before[i] as number) - (g[i] as number)), `${p.name}[${i}]`);
    }
  }
});
