/**
 * model.onnx as an HF-ecosystem ONNX consumer sees it (optimum's decoder conventions): it reads the input
 * names and declared shapes from the runtime alone, builds the empty past from them (every dim named
 * `*past_sequence_length` is 0, `batch_size` is its batch, any other name it cannot fill), and decodes
 * greedily on `present.*` from step to step. Its tokens must be the engine's own.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { tinyModel } from '../../test/fixtures/test-model.js';
import { OrtSession } from '../runtime/ort-session.js';
import { generate } from '../sampling/generate.js';
import { buildInferenceModel } from './inference-graph.js';

type Metadata = { name: string; isTensor: boolean; shape?: readonly (number | string)[] };

function emptyPast(meta: Metadata, batch: number): ort.Tensor {
  const dims = (meta.shape ?? []).map((d) => {
    if (typeof d === 'number') return d;
    if (d === 'batch_size') return batch;
    if (d.endsWith('past_sequence_length')) return 0;
    throw new Error(`${meta.name}: a consumer cannot size dim "${d}" of an empty past`);
  });
  return new ort.Tensor('float32', new Float32Array(0), dims);
}

test('a consumer that sizes the empty past from the declared shapes generates what the engine does', async () => {
  const { config, weights } = tinyModel({ initializer_range: 0.3 });
  const bytes = buildInferenceModel(config, weights);
  const session = await ort.InferenceSession.create(bytes);
  const inputs = session.inputMetadata as readonly Metadata[];
  const shapeOf = (name: string) => inputs.find((m) => m.name === name)?.shape;
  assert.deepEqual(shapeOf('input_ids'), ['batch_size', 'sequence_length']);
  assert.deepEqual(shapeOf('attention_mask'), ['batch_size', 'total_sequence_length']);
  assert.deepEqual(shapeOf('position_ids'), ['batch_size', 'sequence_length']);
  const pastNames = inputs.map((m) => m.name).filter((n) => n.startsWith('past_key_values.'));
  assert.equal(pastNames.length, 2 * config.num_hidden_layers);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const part of ['key', 'value']) {
      assert.ok(pastNames.includes(`past_key_values.${i}.${part}`));
      assert.ok(session.outputNames.includes(`present.${i}.${part}`));
    }
  }
  assert.ok(session.outputNames.includes('logits'));

  const prompt = [0, 5, 9, 13];
  const steps = 8;
  let past: Record<string, ort.Tensor> = {};
  for (const name of pastNames) past[name] = emptyPast(inputs.find((m) => m.name === name) as Metadata, 1);
  let fresh = prompt;
  const seen = [...prompt];
  const tokens: number[] = [];
  for (let step = 0; step < steps; step++) {
    const start = seen.length - fresh.length;
    const out = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(fresh.map(BigInt)), [1, fresh.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(seen.length).fill(1n), [1, seen.length]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(fresh.map((_, k) => BigInt(start + k))), [
        1,
        fresh.length,
      ]),
      ...past,
    });
    const logits = out.logits?.data as Float32Array;
    const last = logits.subarray((fresh.length - 1) * config.vocab_size, fresh.length * config.vocab_size);
    let best = 0;
    for (let v = 1; v < last.length; v++) if ((last[v] as number) > (last[best] as number)) best = v;
    tokens.push(best);
    seen.push(best);
    fresh = [best];
    past = {};
    for (const name of pastNames)
      past[name] = out[name.replace('past_key_values.', 'present.')] as ort.Tensor;
  }

  const engine = await generate(await OrtSession.create(bytes), config, [{ promptIds: prompt, n: 1 }], {
    temperature: 1,
    topP: 1,
    topK: 0,
    greedy: true,
    maxNewTokens: steps,
    seed: 1,
    eosId: -1,
    padId: 2,
  });
  assert.deepEqual(tokens, engine[0]?.tokenIds);
});
