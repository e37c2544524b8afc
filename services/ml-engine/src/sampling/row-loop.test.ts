import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tinyLlamaConfig } from '../../test/fixtures/tiny-llama.js';
import { EngineError } from '../engine-error.js';
import { type LlamaConfig, parameterCount } from '../model/config.js';
import { buildInferenceModel } from '../model/inference-graph.js';
import { initWeights } from '../model/weights.js';
import { DataType, type ModelProto } from '../onnx/onnx-types.js';
import { int64Tensor, intAttribute, nodeMaker, valueInfo } from '../onnx/proto-nodes.js';
import { Rng } from '../random/rng.js';
import { OrtSession } from '../runtime/ort-session.js';
import { type GenerateOptions, type GenerateRequest, generate, type RequestOptions } from './generate.js';
import {
  ROW_LOOP_MAX_PARAMETERS,
  type RowAdvance,
  RowLoop,
  rowLoopFor,
  rowLoopMaxParameters,
  rowLoopMode,
} from './row-loop.js';

const tiny = tinyLlamaConfig({ initializer_range: 0.3 });
// The bench's small model's vocabulary: running sums over 512 probabilities, many of them tiny.
const wide = tinyLlamaConfig({ vocab_size: 512, initializer_range: 0.6 });
const base: GenerateOptions = {
  temperature: 1,
  topP: 1,
  topK: 0,
  greedy: false,
  maxNewTokens: 40,
  seed: 5,
  eosId: 1,
  padId: 2,
};

async function withModel(
  config: LlamaConfig,
  seed: number,
  body: (session: OrtSession, loop: RowLoop, bytes: Uint8Array) => Promise<void>,
): Promise<void> {
  const bytes = buildInferenceModel(config, initWeights(config, new Rng(seed)));
  const session = await OrtSession.create(bytes);
  const loop = new RowLoop(bytes, config);
  try {
    await body(session, loop, bytes);
  } finally {
    await Promise.all([session.dispose(), loop.dispose()]);
  }
}

/** generate() for one request of one row, with and without the row loop. */
async function both(
  session: OrtSession,
  config: LlamaConfig,
  loop: RowLoop,
  req: GenerateRequest,
  o: GenerateOptions,
) {
  const stepwise = await generate(session, config, [req], o);
  const looped = await generate(session, config, [req], { ...o, rowLoop: loop });
  return { stepwise, looped };
}

test('the row loop picks what token-by-token generation picks: tokens, log-probs and finish reasons, bit for bit', async () => {
  for (const [config, seed] of [
    [tiny, 31],
    [wide, 7],
  ] as const) {
    await withModel(config, seed, async (session, loop) => {
      let eos = 0;
      let length = 0;
      for (let s = 0; s < 30; s++) {
        const settings: Partial<GenerateOptions>[] = [{}, { greedy: true }, { temperature: 0 }];
        for (const extra of settings) {
          const req = { promptIds: [0, 3 + (s % 7), 9, 4 + (s % 5)], n: 1, promptIndex: s };
          const o = { ...base, ...extra, seed: s, eosId: -1 };
          const full = await both(session, config, loop, req, o);
          assert.deepEqual(full.looped, full.stepwise, `seed ${s}, ${JSON.stringify(extra)}`);
          // Again with a token the row samples made its EOS: the row ends there, inside a chunk or after it.
          const eosId = full.stepwise[0]?.tokenIds[3 + ((s * 7) % 36)] as number;
          const cut = await both(session, config, loop, req, { ...o, eosId });
          assert.deepEqual(cut.looped, cut.stepwise, `seed ${s}, eos ${eosId}, ${JSON.stringify(extra)}`);
          for (const r of [full, cut]) {
            if (r.stepwise[0]?.finishReason === 'eos') eos++;
            if (r.stepwise[0]?.finishReason === 'length') length++;
          }
        }
      }
      assert.ok(eos > 30 && length > 30, `eos ${eos}, length ${length}`);
    });
  }
});

test('a decomposed inference graph (model.onnx from before the fused ops) keeps its mask in the row loop, and the same picks', async () => {
  const bytes = buildInferenceModel(tiny, initWeights(tiny, new Rng(31)), { fused: false });
  const session = await OrtSession.create(bytes);
  const loop = new RowLoop(bytes, tiny);
  for (let s = 0; s < 10; s++) {
    for (const greedy of [false, true]) {
      const req = { promptIds: [0, 5, 9 + s], n: 1, promptIndex: s };
      const { stepwise, looped } = await both(session, tiny, loop, req, {
        ...base,
        seed: s,
        greedy,
        eosId: -1,
      });
      assert.deepEqual(looped, stepwise, `seed ${s}, greedy ${greedy}`);
    }
  }
  assert.ok((await loop.session('sample')).inputNames.includes('mask0'), 'the mask is fed');
  const fused = new RowLoop(buildInferenceModel(tiny, initWeights(tiny, new Rng(31))), tiny);
  assert.ok(!(await fused.session('sample')).inputNames.includes('mask0'), 'and not for fused ops');
  await Promise.all([session.dispose(), loop.dispose(), fused.dispose()]);
});

test('the row loop ends a row on stop ids, end ids, stopWhen and cancellation as a step does', async () => {
  await withModel(tiny, 31, async (session, loop) => {
    for (let s = 0; s < 15; s++) {
      const req = (options: RequestOptions): GenerateRequest => ({
        promptIds: [0, 5, 9],
        n: 1,
        promptIndex: s,
        options,
      });
      let calls = 0;
      const cases: GenerateRequest[] = [
        req({ stopIds: [7, 11] }),
        req({ endIds: [13, 17] }),
        req({ stopWhen: (ids) => ids.filter((t) => t === 20).length >= 2 }),
        req({ cancelled: () => ++calls > 25 }),
        req({ maxNewTokens: 1 }),
        req({ maxNewTokens: 33 }),
      ];
      for (const [k, r] of cases.entries()) {
        calls = 0;
        const stepwise = await generate(session, tiny, [r], { ...base, seed: s, eosId: -1 });
        calls = 0;
        const looped = await generate(session, tiny, [r], { ...base, seed: s, eosId: -1, rowLoop: loop });
        assert.deepEqual(looped, stepwise, `seed ${s}, case ${k}`);
      }
    }
  });
});

test('rows the row loop cannot pick for, and batches of several rows, stay on the step session', async () => {
  const bytes = buildInferenceModel(tiny, initWeights(tiny, new Rng(31)));
  const session = await OrtSession.create(bytes);
  // A row loop over a broken model: it throws the moment one of its sessions is made.
  const broken = new RowLoop(new Uint8Array([8, 1, 2]), tiny);
  const one = [{ promptIds: [0, 5, 9], n: 1 }];
  for (const extra of [{ temperature: 0.7 }, { topK: 5 }, { topP: 0.9 }]) {
    assert.equal(rowLoopMode({ ...base, ...extra }), null);
    await generate(session, tiny, one, { ...base, ...extra, rowLoop: broken });
  }
  await generate(session, tiny, [{ promptIds: [0, 5, 9], n: 2 }], { ...base, rowLoop: broken });
  await generate(session, tiny, one, { ...base, useCache: false, rowLoop: broken });
  await assert.rejects(generate(session, tiny, one, { ...base, rowLoop: broken }));
  // Releasing it after a session could not be made does not throw (a model cache evicting the model).
  await broken.dispose();
  await session.dispose();
});

test('a row the loop gives back is generated again from its start, token by token, with the same draws', async () => {
  await withModel(tiny, 31, async (session, loop, bytes) => {
    // A row loop that gives every row back after taking a few of its tokens, its random stream advanced.
    class GivingBack extends RowLoop {
      gaveBack = 0;
      override async advance(...args: Parameters<RowLoop['advance']>): Promise<RowAdvance> {
        const step = await super.advance(...args);
        if (step.tokens < 2) return step;
        this.gaveBack++;
        return { ...step, state: null, givenBack: true };
      }
    }
    const giving = new GivingBack(bytes, tiny);
    for (let s = 0; s < 10; s++) {
      const req = { promptIds: [0, 5, 9], n: 1, promptIndex: s };
      const stepwise = await generate(session, tiny, [req], { ...base, seed: s, eosId: -1 });
      const again = await generate(session, tiny, [req], { ...base, seed: s, eosId: -1, rowLoop: giving });
      assert.deepEqual(again, stepwise);
    }
    assert.equal(giving.gaveBack, 10);
    await giving.dispose();
    assert.ok(loop);
  });
});

test("ORT's float64 CumSum over float32 probabilities is JavaScript's sequential sum, bit for bit", async () => {
  // The row loop's sampling rests on this: its running sums are the ones sampleToken adds up.
  const node = nodeMaker('t');
  const model: ModelProto = {
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    producerName: 'test',
    producerVersion: '',
    domain: '',
    modelVersion: 1,
    docString: '',
    metadataProps: [],
    graph: {
      name: 'cumsum',
      node: [
        node('Cast', ['p'], ['p64'], [intAttribute('to', DataType.DOUBLE)]),
        node('CumSum', ['p64', 'axis'], ['running']),
      ],
      initializer: [int64Tensor('axis', [], [1])],
      input: [valueInfo('p', DataType.FLOAT, [1, 'V'])],
      output: [valueInfo('running', DataType.DOUBLE, [1, 'V'])],
      valueInfo: [],
    },
  };
  const session = await OrtSession.create(model);
  const rng = new Rng(9);
  for (let k = 0; k < 50; k++) {
    const vocab = 100 + rng.int(2000);
    // Probabilities over many magnitudes, exact zeros among them, as a peaked softmax gives.
    const p = Float32Array.from({ length: vocab }, () =>
      rng.uniform() < 0.1 ? 0 : Math.exp(-40 * rng.uniform()) * rng.uniform(),
    );
    const out = (await session.run({ p: { data: p, dims: [1, vocab] } })).running?.data as Float64Array;
    let sum = 0;
    for (let i = 0; i < vocab; i++) {
      sum += p[i] as number;
      assert.equal(out[i], sum, `row ${k}, index ${i}`);
    }
  }
  await session.dispose();
});

test('rowLoopFor: causal LMs up to RLHF_ROW_LOOP_MAX_PARAMETERS get a row loop; reward models and 0 get none', async () => {
  const bytes = buildInferenceModel(tiny, initWeights(tiny, new Rng(31)));
  const loop = rowLoopFor(bytes, tiny, {});
  assert.ok(loop instanceof RowLoop);
  await loop.dispose();
  const scalar = tinyLlamaConfig({ architectures: ['LlamaForSequenceClassification'], num_labels: 1 });
  assert.equal(rowLoopFor(bytes, scalar, {}), undefined);
  assert.equal(rowLoopFor(bytes, tiny, { RLHF_ROW_LOOP_MAX_PARAMETERS: '0' }), undefined);
  assert.equal(
    rowLoopFor(bytes, tiny, { RLHF_ROW_LOOP_MAX_PARAMETERS: String(parameterCount(tiny)) }) !== undefined,
    true,
  );
  assert.equal(rowLoopMaxParameters({}), ROW_LOOP_MAX_PARAMETERS);
  assert.throws(
    () => rowLoopMaxParameters({ RLHF_ROW_LOOP_MAX_PARAMETERS: 'lots' }),
    (e: unknown) => e instanceof EngineError && e.field === 'RLHF_ROW_LOOP_MAX_PARAMETERS',
  );
});
