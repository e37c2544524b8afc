import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tinyModel } from '../../test/fixtures/test-model.js';
import { buildInferenceModel } from '../model/inference-graph.js';
import { EXTERNAL_DATA_ALIGNMENT, externalDataRef, isExternal } from '../onnx/external-data.js';
import { decodeModel } from '../onnx/onnx-decode.js';
import { encodeModel } from '../onnx/onnx-encode.js';
import { OrtSession, type TensorValue } from '../runtime/ort-session.js';
import { policySession } from '../sampling/generate-texts.js';
import { loadModelDir, saveModelDir } from './model-dir.js';
import { INLINE_WEIGHTS_MAX_BYTES, MODEL_DATA_FILE, weightBytes } from './model-onnx-file.js';

const readBytes = async (path: string) => new Uint8Array(await readFile(path));

/** One forward pass of the first few token ids; returns the logits. */
async function logitsOf(session: OrtSession, vocab: number): Promise<Float32Array> {
  const ids = [1, 5, 9, 2];
  const layers = session.inputNames.filter((n) => n.endsWith('.key')).length;
  const feeds: Record<string, TensorValue> = {
    input_ids: { data: BigInt64Array.from(ids, BigInt), dims: [1, ids.length] },
    attention_mask: { data: new BigInt64Array(ids.length).fill(1n), dims: [1, ids.length] },
    position_ids: { data: BigInt64Array.from(ids.keys(), BigInt), dims: [1, ids.length] },
  };
  const kv = tinyModel().config;
  const headDim = kv.hidden_size / kv.num_attention_heads;
  for (let i = 0; i < layers; i++)
    for (const part of ['key', 'value'])
      feeds[`past_key_values.${i}.${part}`] = {
        data: new Float32Array(0),
        dims: [1, kv.num_key_value_heads, 0, headDim],
      };
  const out = await session.run(feeds, ['logits']);
  const logits = out.logits?.data as Float32Array;
  assert.equal(logits.length, ids.length * vocab);
  return logits;
}

describe('model.onnx external data', () => {
  let root = '';
  let inline = '';
  let external = '';
  const model = tinyModel();
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'external-data-'));
    inline = join(root, 'inline');
    external = join(root, 'external');
    await saveModelDir(inline, model);
    // A threshold of 0 bytes puts this tiny model's weights out of line, as a 3 GB model's would be.
    await saveModelDir(external, model, { inlineMaxBytes: 0 });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps weights inline up to the threshold and moves them out above it', async () => {
    assert.ok(weightBytes(model.config) < INLINE_WEIGHTS_MAX_BYTES);
    assert.ok(!(await readdir(inline)).includes(MODEL_DATA_FILE));
    assert.ok((await readdir(external)).includes(MODEL_DATA_FILE));
    const onnx = decodeModel(await readBytes(join(external, 'model.onnx')));
    const params = onnx.graph.initializer.filter((t) => model.weights.has(t.name));
    assert.equal(params.length, model.weights.size);
    let end = 0;
    for (const t of params) {
      assert.ok(isExternal(t), t.name);
      const ref = externalDataRef(t);
      assert.equal(ref.location, MODEL_DATA_FILE);
      assert.equal(ref.offset % EXTERNAL_DATA_ALIGNMENT, 0, `${t.name} is 4 KiB aligned`);
      assert.equal(ref.length, (model.weights.get(t.name) as Float32Array).byteLength);
      end = Math.max(end, ref.offset + ref.length);
    }
    assert.equal((await stat(join(external, MODEL_DATA_FILE))).size, end);
    // Graph constants (RoPE tables, axes) stay inline.
    assert.ok(onnx.graph.initializer.some((t) => !isExternal(t)));
  });

  it('reads back the same weights bit for bit from either layout', async () => {
    for (const dir of [inline, external]) {
      const back = await loadModelDir(dir);
      assert.deepEqual([...back.weights.keys()].sort(), [...model.weights.keys()].sort());
      for (const [name, data] of model.weights)
        assert.deepEqual(back.weights.get(name), data, `${dir} ${name}`);
    }
  });

  it('round-trips the external_data fields through the codec', async () => {
    const bytes = await readBytes(join(external, 'model.onnx'));
    assert.deepEqual(encodeModel(decodeModel(bytes)), bytes);
  });

  it('runs in ORT from model.onnx bytes with the same logits as the inline model', async () => {
    const vocab = model.config.vocab_size;
    const reference = await OrtSession.create(buildInferenceModel(model.config, model.weights));
    const loaded = await loadModelDir(external);
    const session = await policySession(loaded, await readBytes(join(external, 'model.onnx')));
    try {
      assert.deepEqual(await logitsOf(session, vocab), await logitsOf(reference, vocab));
    } finally {
      await session.dispose();
      await reference.dispose();
    }
  });

  it('names the data file when it is missing or truncated', async () => {
    const dir = join(root, 'broken');
    await saveModelDir(dir, model, { inlineMaxBytes: 0 });
    const data = await readBytes(join(dir, MODEL_DATA_FILE));
    await writeFile(join(dir, MODEL_DATA_FILE), data.subarray(0, data.length - 8));
    await assert.rejects(loadModelDir(dir), /model\.onnx\.data ends before the bytes of/);
    await rm(join(dir, MODEL_DATA_FILE));
    await assert.rejects(loadModelDir(dir), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'NOT_FOUND');
      assert.match(e.message, /keeps its weights in .*model\.onnx\.data/);
      return true;
    });
  });

  it('refuses an external location outside the model directory', async () => {
    const onnx = decodeModel(await readBytes(join(external, 'model.onnx')));
    const t = onnx.graph.initializer.find(isExternal);
    assert.ok(t?.externalData);
    for (const location of ['../model.onnx.data', '/etc/passwd', 'sub/model.onnx.data', '..']) {
      const entry = t.externalData.find((e) => e.key === 'location');
      assert.ok(entry);
      entry.value = location;
      assert.throws(
        () => decodeModel(encodeModel(onnx), 'm.onnx'),
        /not a file name beside the model/,
        location,
      );
    }
  });
});
