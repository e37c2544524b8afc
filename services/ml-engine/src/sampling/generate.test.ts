import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tinyLlamaConfig } from '../../test/fixtures/tiny-llama.js';
import { buildInferenceModel, NEXT_TOKEN_PROBS } from '../model/inference-graph.js';
import { referenceForward } from '../model/llama-reference.js';
import { initWeights } from '../model/weights.js';
import { Rng } from '../random/rng.js';
import { type ModelRunner, OrtSession, type OutputTensor } from '../runtime/ort-session.js';
import { generate } from './generate.js';

const config = tinyLlamaConfig({ initializer_range: 0.3 });
const weights = initWeights(config, new Rng(31));
const base = {
  temperature: 1,
  topP: 1,
  topK: 0,
  greedy: false,
  maxNewTokens: 12,
  seed: 5,
  eosId: 1,
  padId: 2,
};
const prompts = [
  { promptIds: [0, 5, 9, 13], n: 2 },
  { promptIds: [0, 7], n: 3 },
  { promptIds: [0, 3, 4, 5, 6, 7], n: 1 },
];

test('greedy generation with the KV cache equals generation without it, and the reference model', async () => {
  const session = await OrtSession.create(buildInferenceModel(config, weights));
  const greedy = { ...base, greedy: true, eosId: 39 };
  const cached = await generate(session, config, prompts, greedy);
  const uncached = await generate(session, config, prompts, { ...greedy, useCache: false });
  assert.deepEqual(
    cached.map((s) => s.tokenIds),
    uncached.map((s) => s.tokenIds),
  );
  // The first prompt's greedy continuation, computed by the reference forward pass token by token.
  const seq = [...(prompts[0]?.promptIds ?? [])];
  for (let t = 0; t < 12; t++) {
    const logits = referenceForward(config, weights, seq).logits.at(-1) as Float64Array;
    seq.push(logits.indexOf(Math.max(...logits)));
  }
  assert.deepEqual(cached[0]?.tokenIds, seq.slice(4));
  for (const [i, s] of cached.entries()) {
    for (const [k, lp] of s.logprobs.entries())
      assert.ok(Math.abs(lp - (uncached[i]?.logprobs[k] as number)) < 1e-4);
  }
  await session.dispose();
});

test('sampling is seeded per (prompt, sample): batching and order do not change the text', async () => {
  const session = await OrtSession.create(buildInferenceModel(config, weights));
  const all = await generate(session, config, prompts, base);
  const oneByOne = await generate(session, config, prompts, { ...base, maxBatch: 1 });
  // Tokens must match exactly; log-probs only to float32 rounding, since padding changes GEMM blocking.
  const tokens = (xs: typeof all) =>
    xs.map((s) => [s.promptIndex, s.sampleIndex, s.finishReason, ...s.tokenIds]);
  assert.deepEqual(tokens(all), tokens(oneByOne));
  for (const [i, s] of all.entries()) {
    for (const [k, lp] of s.logprobs.entries())
      assert.ok(Math.abs(lp - (oneByOne[i]?.logprobs[k] as number)) < 1e-4);
  }
  const only = [{ ...(prompts[1] as { promptIds: number[]; n: number }), promptIndex: 1 }];
  const second = await generate(session, config, only, base);
  assert.deepEqual(tokens(second), tokens(all.filter((s) => s.promptIndex === 1)));
  const other = await generate(session, config, prompts, { ...base, seed: 6 });
  assert.notDeepEqual(
    other.map((s) => s.tokenIds),
    all.map((s) => s.tokenIds),
  );
  for (const s of all) {
    assert.ok(s.tokenIds.length <= 12);
    assert.equal(s.finishReason === 'eos', s.tokenIds.at(-1) === 1);
    if (s.finishReason === 'length') assert.equal(s.tokenIds.length, 12);
  }
  await session.dispose();
});

test('per-request options: requests with different settings share a batch and sample what each gets alone', async () => {
  const session = await OrtSession.create(buildInferenceModel(config, weights));
  const requests = [
    {
      promptIds: [0, 5, 9, 13],
      n: 2,
      promptIndex: 0,
      options: { seed: 11, temperature: 0.7, maxNewTokens: 5 },
    },
    { promptIds: [0, 7], n: 3, promptIndex: 0, options: { seed: 12, topK: 5, topP: 0.9 } },
    { promptIds: [0, 3, 4], n: 1, promptIndex: 4, options: { greedy: true, stopIds: [7, 8, 9] } },
  ];
  const seen: Array<[number, number]> = [];
  const together = await generate(
    session,
    config,
    requests.map((r, k) => ({
      ...r,
      options: { ...r.options, onSample: (s) => seen.push([k, s.sampleIndex]) },
    })),
    base,
  );
  const tokens = (xs: typeof together) => xs.map((s) => [s.sampleIndex, s.finishReason, ...s.tokenIds]);
  let at = 0;
  for (const r of requests) {
    const alone = await generate(session, config, [r], base);
    assert.deepEqual(tokens(together.slice(at, at + r.n)), tokens(alone));
    at += r.n;
  }
  assert.ok(together.slice(0, 2).every((s) => s.tokenIds.length <= 5));
  assert.deepEqual(
    seen.sort((a, b) => a[0] - b[0] || a[1] - b[1]),
    [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
      [1, 2],
      [2, 0],
    ],
    'onSample once per sample',
  );
  // stopWhen ends a sample with reason stop, keeping the token that completed the match.
  const stopped = await generate(
    session,
    config,
    [{ promptIds: [0, 5], n: 1, options: { stopWhen: (ids) => ids.length === 3 } }],
    { ...base, eosId: 39, maxNewTokens: 8 },
  );
  assert.equal(stopped[0]?.finishReason, 'stop');
  assert.equal(stopped[0]?.tokenIds.length, 3);
  // A cancelled request stops sampling: its rows end where they were.
  let calls = 0;
  const cancelled = await generate(
    session,
    config,
    [{ promptIds: [0, 5], n: 2, options: { cancelled: () => ++calls > 4 } }],
    { ...base, eosId: 39, maxNewTokens: 10 },
  );
  assert.ok(cancelled.every((s) => s.tokenIds.length <= 2));
  await session.dispose();
});

test("sampling from the graph's next_token_probs draws what sampling from the logits alone draws", async () => {
  const session = await OrtSession.create(buildInferenceModel(config, weights));
  assert.ok(session.outputNames.includes(NEXT_TOKEN_PROBS));
  // The same session, seen as a model directory written before the graph had that output.
  const logitsOnly: ModelRunner = {
    inputNames: session.inputNames,
    outputNames: session.outputNames.filter((n) => n !== NEXT_TOKEN_PROBS),
    run: async (feeds) => {
      const { [NEXT_TOKEN_PROBS]: _, ...rest } = await session.run(feeds);
      return rest;
    },
    dispose: () => session.dispose(),
  };
  const many = prompts.map((p) => ({ ...p, n: 6 }));
  const withProbs = await generate(session, config, many, { ...base, maxNewTokens: 20 });
  const without = await generate(logitsOnly, config, many, { ...base, maxNewTokens: 20 });
  assert.deepEqual(
    withProbs.map((s) => s.tokenIds),
    without.map((s) => s.tokenIds),
  );
  for (const [i, s] of withProbs.entries())
    for (const [k, lp] of s.logprobs.entries())
      assert.ok(Math.abs(lp - (without[i]?.logprobs[k] as number)) < 1e-5);
  // And the draws do come from that output: flattened to uniform, it changes them.
  const flattened: ModelRunner = {
    ...logitsOnly,
    run: async (feeds) => {
      const out = await session.run(feeds);
      const probs = out[NEXT_TOKEN_PROBS] as OutputTensor;
      return { ...out, [NEXT_TOKEN_PROBS]: { ...probs, data: new Float32Array(probs.data.length).fill(1) } };
    },
  };
  const uniform = await generate(flattened, config, many, { ...base, maxNewTokens: 20 });
  assert.notDeepEqual(
    uniform.map((s) => s.tokenIds),
    withProbs.map((s) => s.tokenIds),
  );
  await session.dispose();
});
