import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tinyLlamaConfig } from '../../test/fixtures/tiny-llama.js';
import { EngineError } from '../engine-error.js';
import { parameterCount } from '../model/config.js';
import { buildInferenceModel } from '../model/inference-graph.js';
import { initWeights } from '../model/weights.js';
import { Rng } from '../random/rng.js';
import { OrtSession, type TensorValue } from './ort-session.js';
import { runFlops, SplitSession, smallRunMflops } from './split-session.js';

const config = tinyLlamaConfig({ initializer_range: 0.2 });
const model = buildInferenceModel(config, initWeights(config, new Rng(1)));

/** Feeds for `batch` rows of `seq` new tokens after `past` cached ones (random cache values). */
function feeds(batch: number, seq: number, past: number): Record<string, TensorValue> {
  const rng = new Rng(batch * 1000 + seq * 10 + past);
  const ids = BigInt64Array.from({ length: batch * seq }, () => BigInt(rng.int(config.vocab_size)));
  const out: Record<string, TensorValue> = {
    input_ids: { data: ids, dims: [batch, seq] },
    attention_mask: { data: new BigInt64Array(batch * (past + seq)).fill(1n), dims: [batch, past + seq] },
    position_ids: {
      data: BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt(past + (i % seq))),
      dims: [batch, seq],
    },
  };
  const dims = [batch, 2, past, 8];
  for (let l = 0; l < 2; l++)
    for (const part of ['key', 'value'])
      out[`past_key_values.${l}.${part}`] = {
        data: Float32Array.from({ length: batch * 2 * past * 8 }, () => rng.normal()),
        dims,
      };
  return out;
}

test('runFlops counts every parameter twice per token, plus attention over past and new tokens', () => {
  const p = parameterCount(config);
  assert.equal(runFlops(config, feeds(1, 1, 0)), 2 * p + 4 * 2 * 32 * 1 * 1);
  assert.equal(runFlops(config, feeds(3, 1, 7)), 2 * p * 3 + 4 * 2 * 32 * 3 * 8);
  assert.equal(runFlops(config, feeds(2, 5, 0)), 2 * p * 10 + 4 * 2 * 32 * 10 * 5);
});

test('small runs take the one-thread session, large ones every thread, with the same outputs as one session', async () => {
  const p = parameterCount(config);
  // The limit sits between a 4-token run (one row) and a 64-token run (16 rows of 4).
  const limitMflops = (2 * p * 16) / 1e6;
  const env = { RLHF_ORT_SMALL_RUN_MFLOPS: String(limitMflops) };
  const split = await SplitSession.create(model, config, { threads: 2, spinning: false }, env);
  assert.ok(split instanceof SplitSession);
  const plain = await OrtSession.create(model, { threads: 2, spinning: false });
  try {
    const small = feeds(1, 4, 3);
    const large = feeds(16, 4, 0);
    assert.equal(split.takesOneThread(small), true);
    assert.equal(split.takesOneThread(large), false);
    for (const f of [small, large]) {
      const a = await split.run(f);
      const b = await plain.run(f);
      assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
      for (const name of Object.keys(b)) {
        const x = a[name]?.data as Float32Array;
        const y = b[name]?.data as Float32Array;
        assert.equal(x.length, y.length);
        for (let i = 0; i < x.length; i++)
          assert.ok(Math.abs((x[i] as number) - (y[i] as number)) < 1e-5, `${name}[${i}]`);
      }
    }
    assert.deepEqual(split.inputNames, plain.inputNames);
    assert.deepEqual(split.outputNames, plain.outputNames);
  } finally {
    await split.dispose();
    await plain.dispose();
  }
});

test('one session when threads spin, when there is one thread, when even a one-token run is over the limit, or when the limit is 0', async () => {
  const p = parameterCount(config);
  for (const [threads, spinning, env] of [
    [2, true, {}],
    [2, undefined, {}],
    [1, false, {}],
    [2, false, { RLHF_ORT_SMALL_RUN_MFLOPS: String((2 * p) / 1e6) }],
    [2, false, { RLHF_ORT_SMALL_RUN_MFLOPS: '0' }],
  ] as const) {
    const s = await SplitSession.create(
      model,
      config,
      spinning === undefined ? { threads } : { threads, spinning },
      env,
    );
    assert.ok(s instanceof OrtSession, `threads ${threads}, spinning ${spinning}, ${JSON.stringify(env)}`);
    await s.dispose();
  }
});

test('RLHF_ORT_SMALL_RUN_MFLOPS: default 256, and a bad value is an error naming the variable', () => {
  assert.equal(smallRunMflops({}), 256);
  assert.equal(smallRunMflops({ RLHF_ORT_SMALL_RUN_MFLOPS: '64.5' }), 64.5);
  for (const bad of ['-1', 'lots', 'Infinity'])
    assert.throws(
      () => smallRunMflops({ RLHF_ORT_SMALL_RUN_MFLOPS: bad }),
      (e: unknown) => e instanceof EngineError && /RLHF_ORT_SMALL_RUN_MFLOPS/.test(`${e.field} ${e.message}`),
    );
});
