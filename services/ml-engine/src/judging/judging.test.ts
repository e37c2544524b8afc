/** Reward scoring and preference judgements on small trained models with a clear signal. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoadedModelDir } from '../checkpoint/model-dir.js';
import { type LlamaConfig, parseLlamaConfig } from '../model/config.js';
import { buildInferenceModel } from '../model/inference-graph.js';
import { initWeights } from '../model/weights.js';
import { Rng } from '../random/rng.js';
import { OrtSession } from '../runtime/ort-session.js';
import { trainBpe } from '../tokenizer/bpe-trainer.js';
import { type Tokenizer, tokenizerFromJson } from '../tokenizer/tokenizer.js';
import { encodePair } from '../train/examples.js';
import { preferenceExample } from '../train/preference-format.js';
import { defaultTrainOptions, trainModel } from '../train/trainer.js';
import { comparePairs, rankRoundRobin, rankTournament } from './preference.js';
import { scoreResponses } from './reward-scores.js';

const good = ['great', 'superb', 'lovely'];
const bad = ['awful', 'dull', 'boring'];
const corpus = [...good, ...bad].flatMap((w) => [
  `the film was ${w} .`,
  `[CONTEXT] the film [RESPONSE A] was ${w} . [RESPONSE B] was ${w} . [ANSWER] A B`,
]);

function model(head: 'lm' | 'scalar'): { tok: Tokenizer; config: LlamaConfig } {
  const tok = tokenizerFromJson(trainBpe(corpus, { vocabSize: 300 }));
  const config = parseLlamaConfig({
    architectures: [head === 'lm' ? 'LlamaForCausalLM' : 'LlamaForSequenceClassification'],
    hidden_size: 32,
    intermediate_size: 64,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 1,
    vocab_size: tok.vocabSize,
    max_position_embeddings: 64,
  });
  return { tok, config };
}

async function loaded(
  tok: Tokenizer,
  config: LlamaConfig,
  weights: Map<string, Float32Array>,
): Promise<{ m: LoadedModelDir; s: OrtSession }> {
  const m = { config, tokenizer: tok, weights, tokenizerJson: {} as never, dir: 'test' } as LoadedModelDir;
  return { m, s: await OrtSession.create(buildInferenceModel(config, weights)) };
}

test('reward scores rank good above bad, and the length penalty subtracts lambda per character', async () => {
  const { tok, config } = model('scalar');
  const rng = new Rng(1);
  const pairs = Array.from({ length: 128 }, () =>
    encodePair(
      tok,
      {
        prompt: { text: 'the film' },
        chosen: { text: ` was ${good[rng.int(3)]} .` },
        rejected: { text: ` was ${bad[rng.int(3)]} .` },
      },
      64,
    ),
  );
  const r = await trainModel({
    config,
    weights: initWeights(config, new Rng(2)),
    padId: tok.padId,
    examples: pairs,
    options: { ...defaultTrainOptions, objective: 'rm', lr: 5e-3, epochs: 3, batchSize: 16, warmupRatio: 0 },
  });
  const { m, s } = await loaded(tok, config, r.weights);
  const [scored] = await scoreResponses(
    m,
    s,
    [{ prompt: 'the film', responses: [' was great .', ' was awful .', ' was superb .', ' was dull .'] }],
    0.01,
  );
  assert.ok(scored);
  const [g1, b1, g2, b2] = scored.rewards as [number, number, number, number];
  assert.ok(Math.min(g1, g2) > Math.max(b1, b2), `rewards ${scored.rewards.join(', ')}`);
  scored.penalizedRewards.forEach((p, i) => {
    assert.ok(
      Math.abs(
        p -
          ((scored.rewards[i] as number) -
            0.01 * [' was great .', ' was awful .', ' was superb .', ' was dull .'][i]!.length),
      ) < 1e-12,
    );
  });
  await s.dispose();
});

test('preference model: debiased probabilities are antisymmetric; tournament and round robin find the best', async () => {
  const { tok, config } = model('lm');
  const rng = new Rng(3);
  const rows = Array.from({ length: 256 }, () =>
    preferenceExample(tok, 'the film', `was ${good[rng.int(3)]} .`, `was ${bad[rng.int(3)]} .`, rng, 64),
  );
  const r = await trainModel({
    config,
    weights: initWeights(config, new Rng(4)),
    padId: tok.padId,
    examples: rows,
    options: { ...defaultTrainOptions, objective: 'pm', lr: 1e-2, epochs: 8, batchSize: 16, warmupRatio: 0 },
  });
  const { m, s } = await loaded(tok, config, r.weights);
  const [ab, ba] = await comparePairs(m, s, [
    { prompt: 'the film', a: 'was great .', b: 'was dull .' },
    { prompt: 'the film', a: 'was dull .', b: 'was great .' },
  ]);
  assert.ok(ab && ba);
  assert.ok(Math.abs(ab.probABetter + ba.probABetter - 1) < 1e-9, 'P(a>b) + P(b>a) = 1 after debiasing');
  assert.ok(ab.probABetter > 0.8, `P(great > dull) = ${ab.probABetter}`);
  const responses = ['was dull .', 'was awful .', 'was superb .', 'was boring .', 'was dull .'];
  const t = await rankTournament(m, s, 'the film', responses);
  assert.equal(t.ranking[0], 2);
  assert.ok(t.comparisons <= 2 * responses.length, `a linear number of comparisons, got ${t.comparisons}`);
  assert.deepEqual([...t.ranking].sort(), [0, 1, 2, 3, 4]);
  const rr = await rankRoundRobin(m, s, 'the film', responses);
  assert.equal(rr.ranking[0], 2);
  assert.equal(rr.comparisons, 10);
  await s.dispose();
});
