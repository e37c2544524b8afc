/**
 * Top log-probs per sampled token and the per-token hook: the alternatives are the model's k most likely
 * ids under its own distribution (whatever the sampling settings), asking for them changes no token, and a
 * row that asks decodes step by step, each token reported as it is taken.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { tinyLlamaConfig } from '../../test/fixtures/tiny-llama.js';
import { buildInferenceModel } from '../model/inference-graph.js';
import { initWeights } from '../model/weights.js';
import { Rng } from '../random/rng.js';
import { OrtSession } from '../runtime/ort-session.js';
import { DecodeLoop, type StepInfo } from './decode-loop.js';
import { type GenerateOptions, generate, type Sample } from './generate.js';
import { RowLoop } from './row-loop.js';
import { idsByLogit } from './sample-token.js';
import { topLogprobs } from './top-logprobs.js';

test('topLogprobs: the k largest logits in comparator order (ties to the lower id), as log-softmax', () => {
  const rng = new Rng(3);
  for (let trial = 0; trial < 50; trial++) {
    const vocab = 1 + rng.int(300);
    // Few distinct values: many ties.
    const logits = Float32Array.from({ length: vocab }, () => rng.int(9) - 4 + (trial % 2) * rng.uniform());
    const k = rng.int(25);
    const got = topLogprobs(logits, 0, vocab, k);
    const order = Array.from(idsByLogit(logits, 0, vocab)).slice(0, Math.min(k, vocab));
    assert.deepEqual(
      got.map((t) => t.token),
      order,
      `trial ${trial}`,
    );
    let sum = 0;
    for (const x of logits) sum += Math.exp(x);
    for (const t of got)
      assert.ok(Math.abs(t.logprob - ((logits[t.token] as number) - Math.log(sum))) < 1e-9);
  }
  // An offset row inside a batch, and NaN logits chosen only once no number is left.
  const rows = Float32Array.of(9, 9, 9, Number.NaN, 1, 3, Number.NaN, 2);
  const withNaN = topLogprobs(rows, 3, 5, 4);
  assert.deepEqual(
    withNaN.map((t) => t.token),
    [2, 4, 1, 0],
  );
  const lse = Math.log(Math.exp(1) + Math.exp(3) + Math.exp(2));
  assert.ok(Math.abs((withNaN[0]?.logprob as number) - (3 - lse)) < 1e-9);
  assert.deepEqual(topLogprobs(rows, 0, 3, 0), []);
});

const config = tinyLlamaConfig({ initializer_range: 0.3 });
const o: GenerateOptions = {
  temperature: 0.8,
  topP: 0.9,
  topK: 0,
  greedy: false,
  maxNewTokens: 30,
  seed: 7,
  eosId: 40,
  padId: 2,
};
let session: OrtSession;
before(async () => {
  session = await OrtSession.create(buildInferenceModel(config, initWeights(config, new Rng(31))));
});
after(async () => {
  await session.dispose();
});

test('a row asking top log-probs samples the same tokens, step by step, each reported as it is taken', async () => {
  const rowLoop = new RowLoop(buildInferenceModel(config, initWeights(config, new Rng(31))), config);
  try {
    for (const settings of [{ greedy: true }, { temperature: 1, topP: 1 }, {}]) {
      const plain = [{ promptIds: [0, 5, 9], n: 1, promptIndex: 0, options: settings }];
      const want = await generate(session, config, plain, o);
      const seen: Array<[number, boolean]> = [];
      const steps: StepInfo[] = [];
      const loop = new DecodeLoop(session, config, {
        eosId: o.eosId,
        padId: o.padId,
        rowLoop,
        onStep: (s) => steps.push(s),
      });
      const asked = [
        {
          ...plain[0],
          options: {
            ...settings,
            topLogprobs: 5,
            onToken: (s: Sample, done: boolean) => seen.push([s.tokenIds.length, done]),
          },
        },
      ];
      const [got] = (await loop.submit(asked as typeof plain, o)) as [Sample];
      const what = JSON.stringify(settings);
      assert.deepEqual(got.tokenIds, want[0]?.tokenIds, what);
      // Never on the row loop (it returns no logits): one token a step (two in the step that prefills).
      assert.ok(
        steps.every((s) => s.tokens <= 2),
        what,
      );
      assert.deepEqual(
        seen,
        got.tokenIds.map((_, i) => [i + 1, i + 1 === got.tokenIds.length]),
        what,
      );
      assert.equal(got.topLogprobs?.length, got.tokenIds.length);
      got.topLogprobs?.forEach((top, i) => {
        assert.equal(top.length, 5);
        for (let j = 1; j < top.length; j++)
          assert.ok((top[j - 1]?.logprob as number) >= (top[j]?.logprob as number));
        const own = top.find((t) => t.token === got.tokenIds[i]);
        // The sampled token, when among the top, carries the log-prob its sample records.
        if (own) assert.equal(own.logprob, got.logprobs[i]);
        else assert.ok((got.logprobs[i] as number) <= (top.at(-1)?.logprob as number) + 1e-6);
        if ('greedy' in settings) assert.equal(top[0]?.token, got.tokenIds[i]);
      });
    }
    // generate() keeps such rows off the row loop too, and gives the same alternatives.
    const req = [{ promptIds: [0, 5, 9], n: 1, promptIndex: 0, options: { greedy: true, topLogprobs: 3 } }];
    const [g] = await generate(session, config, req, { ...o, rowLoop });
    assert.equal(g?.topLogprobs?.length, g?.tokenIds.length);
    assert.ok(g?.topLogprobs?.every((t, i) => t[0]?.token === g.tokenIds[i]));
  } finally {
    await rowLoop.dispose();
  }
});
