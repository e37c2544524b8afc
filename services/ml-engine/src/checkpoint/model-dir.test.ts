import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tinyModel } from '../../test/fixtures/test-model.js';
import { architectureOf, type LlamaConfig } from '../model/config.js';
import { decodeModel } from '../onnx/onnx-decode.js';
import { encodeModel } from '../onnx/onnx-encode.js';
import { tensorFromData } from '../onnx/tensor-data.js';
import { loadModelDir, type ModelDirContents, saveModelDir } from './model-dir.js';

/** A plain Uint8Array: the ONNX decoder mis-slices Node Buffers (Buffer#slice does not copy). */
const readBytes = async (path: string) => new Uint8Array(await readFile(path));

type CodedError = Error & { code?: string; field?: string };

/** Asserts the promise fails with `code` and a message matching every pattern. */
async function rejectsWith(promise: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (e: CodedError) => {
    assert.equal(e.code, code, e.message);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

function assertSameWeights(a: ModelDirContents['weights'], b: ModelDirContents['weights']): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, data] of a) assert.deepEqual(b.get(name), data, name);
}

describe('model directory', () => {
  let root = '';
  let saved = '';
  const model = tinyModel();
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'model-dir-'));
    saved = join(root, 'saved');
    await saveModelDir(saved, model);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** A copy of the saved model directory with one file replaced (or removed, for `undefined`). */
  async function variant(name: string, file: string, content: string | Uint8Array | undefined) {
    const dir = join(root, name);
    await saveModelDir(dir, model);
    if (content === undefined) await rm(join(dir, file));
    else await writeFile(join(dir, file), content);
    return dir;
  }

  it('writes config.json, the tokenizer files and model.onnx, and nothing else', async () => {
    assert.deepEqual((await readdir(saved)).sort(), [
      'config.json',
      'model.onnx',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    assert.deepEqual(JSON.parse(await readFile(join(saved, 'config.json'), 'utf8')), model.config);
    const tokenizerConfig = JSON.parse(await readFile(join(saved, 'tokenizer_config.json'), 'utf8'));
    assert.equal(tokenizerConfig.bos_token, '<|bos|>');
    assert.equal(tokenizerConfig.model_max_length, model.config.max_position_embeddings);
    assert.deepEqual(
      (await readdir(root)).filter((f) => f.includes('.tmp-')),
      [],
    );
  });

  it('loads back identical config, tokenizer and weights', async () => {
    const loaded = await loadModelDir(saved);
    assert.deepEqual(loaded.config, model.config);
    assert.deepEqual(loaded.tokenizerJson, model.tokenizerJson);
    assert.equal(loaded.dir, saved);
    assert.equal(loaded.tokenizer.vocabSize, 300);
    assert.deepEqual(
      [loaded.tokenizer.bosId, loaded.tokenizer.eosId, loaded.tokenizer.padId],
      [model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id],
    );
    assert.equal(loaded.tokenizer.decode(loaded.tokenizer.encode('the plot was dull')), 'the plot was dull');
    assertSameWeights(model.weights, loaded.weights);
  });

  it('round-trips a reward model (scalar head) and an untied LM head', async () => {
    const cases: [string, Partial<LlamaConfig>][] = [
      ['scalar', { architectures: [architectureOf.scalar] }],
      ['untied', { tie_word_embeddings: false }],
    ];
    for (const [name, overrides] of cases) {
      const m = tinyModel(overrides, 3);
      await saveModelDir(join(root, name), m);
      const loaded = await loadModelDir(join(root, name));
      assert.deepEqual(loaded.config, m.config);
      assertSameWeights(m.weights, loaded.weights);
    }
  });

  it('reads weights stored as float_data as well as raw_data', async () => {
    const onnx = decodeModel(await readBytes(join(saved, 'model.onnx')));
    for (const t of onnx.graph.initializer) {
      if (t.name !== 'model.norm.weight') continue;
      t.floatData = [...new Float32Array(t.rawData!.slice().buffer)];
      delete t.rawData;
    }
    const dir = await variant('float-data', 'model.onnx', encodeModel(onnx));
    assertSameWeights(model.weights, (await loadModelDir(dir)).weights);
  });

  it('refuses to overwrite a model unless asked', async () => {
    await rejectsWith(saveModelDir(saved, model), 'ALREADY_EXISTS', /refusing to overwrite/);
    const other = tinyModel({}, 99);
    await saveModelDir(saved, other, { overwrite: true });
    assertSameWeights(other.weights, (await loadModelDir(saved)).weights);
    await saveModelDir(saved, model, { overwrite: true });
  });

  it('checks the model before writing anything', async () => {
    const bad = async (name: string, contents: ModelDirContents, ...patterns: RegExp[]) => {
      const out = join(root, name);
      await rejectsWith(saveModelDir(out, contents), 'INVALID_ARGUMENT', ...patterns);
      assert.deepEqual(
        (await readdir(root)).filter((f) => f.startsWith(name)),
        [],
      );
    };
    const missing = new Map(model.weights);
    missing.delete('model.layers.1.mlp.up_proj.weight');
    await bad(
      'missing-weight',
      { ...model, weights: missing },
      /missing parameter model\.layers\.1\.mlp\.up_proj/,
    );
    await bad(
      'small-vocab',
      { ...tinyModel({ vocab_size: 290 }) },
      /"vocab_size" is 290, but tokenizerJson has 300 tokens/,
    );
    await bad(
      'bad-eos',
      { ...model, config: { ...model.config, eos_token_id: 302 } },
      /"eos_token_id" is 302, which is not a token of the tokenizer/,
    );
  });

  it('a missing directory or file is NOT_FOUND naming the path', async () => {
    await rejectsWith(loadModelDir(join(root, 'nope')), 'NOT_FOUND', /model directory .*nope does not exist/);
    for (const file of ['config.json', 'tokenizer.json', 'model.onnx']) {
      const dir = await variant(`without-${file}`, file, undefined);
      await rejectsWith(loadModelDir(dir), 'NOT_FOUND', new RegExp(`${join(dir, file)} does not exist`));
    }
  });

  it('an unknown config field names config.json and the field', async () => {
    const config = { ...model.config, hiden_size: 16 };
    const dir = await variant('unknown-field', 'config.json', JSON.stringify(config));
    await assert.rejects(loadModelDir(dir), (e: CodedError) => {
      assert.match(e.message, /unknown-field\/config\.json: field "hiden_size" is not a Llama config field/);
      assert.match(e.message, /did you mean hidden_size/);
      assert.equal(e.field, `${join(dir, 'config.json')}:hiden_size`);
      return true;
    });
  });

  it('a corrupt or truncated model.onnx fails as a corrupt ONNX file naming it', async () => {
    const bytes = await readFile(join(saved, 'model.onnx'));
    const truncated = await variant('truncated', 'model.onnx', bytes.subarray(0, bytes.length - 1000));
    await rejectsWith(
      loadModelDir(truncated),
      'INVALID_ARGUMENT',
      /^corrupt ONNX file .*truncated\/model\.onnx: /,
    );
    const junk = await variant('junk', 'model.onnx', 'this is not a protobuf');
    await rejectsWith(loadModelDir(junk), 'INVALID_ARGUMENT', /^corrupt ONNX file .*junk\/model\.onnx: /);
  });

  it('a model.onnx that does not match config.json names the file, the parameter and both shapes', async () => {
    const config = { ...model.config, intermediate_size: 48 };
    const dir = await variant('wider', 'config.json', JSON.stringify(config));
    await rejectsWith(
      loadModelDir(dir),
      'INVALID_ARGUMENT',
      /wider\/model\.onnx: model\.layers\.0\.mlp\.gate_proj\.weight has shape \[40, 16\], config\.json implies \[48, 16\]/,
    );
    const onnx = decodeModel(await readBytes(join(saved, 'model.onnx')));
    onnx.graph.initializer.push(tensorFromData('lm_head.weight', 'float32', [1, 1], new Float32Array(1)));
    const extra = await variant('extra-head', 'model.onnx', encodeModel(onnx));
    await assert.rejects(loadModelDir(extra), (e: CodedError & { fix?: string }) => {
      assert.match(e.message, /extra-head\/model\.onnx: unexpected parameter lm_head\.weight/);
      assert.match(e.fix ?? '', /tie_word_embeddings/);
      return true;
    });
  });

  it('special-token ids in config.json must agree with tokenizer_config.json', async () => {
    const dir = await variant('swapped', 'config.json', JSON.stringify({ ...model.config, pad_token_id: 1 }));
    await rejectsWith(
      loadModelDir(dir),
      'INVALID_ARGUMENT',
      /tokenizer_config\.json: the pad token is id 2, but .*config\.json has "pad_token_id": 1/,
    );
  });
});
