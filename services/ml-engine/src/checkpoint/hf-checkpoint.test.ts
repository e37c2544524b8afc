import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { tinyModel } from '../../test/fixtures/test-model.js';
import { headDim, type LlamaConfig } from '../model/config.js';
import { generateTexts, policySession } from '../sampling/generate-texts.js';
import { exportHfCheckpoint, importHfCheckpoint } from './hf-checkpoint.js';
import { loadModelDir, type ModelDirContents, saveModelDir } from './model-dir.js';
import { type F32Tensor, readSafetensors, writeSafetensors } from './safetensors.js';

type CodedError = Error & { code?: string; field?: string; fix?: string };

function assertSameWeights(a: ModelDirContents['weights'], b: ModelDirContents['weights']): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, data] of a) assert.deepEqual(b.get(name), data, name);
}

/** A checkpoint's tensors in a map a test may add F32 tensors to. */
const readTensors = async (path: string) => new Map<string, F32Tensor>((await readSafetensors(path)).tensors);

const readJson = async (path: string) => JSON.parse(await readFile(path, 'utf8'));

describe('Hugging Face checkpoints', () => {
  let root = '';
  let modelDir = '';
  let hfDir = '';
  const model = tinyModel();
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'hf-ckpt-'));
    modelDir = join(root, 'model');
    hfDir = join(root, 'hf');
    await saveModelDir(modelDir, model);
    await exportHfCheckpoint(modelDir, hfDir);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Nothing under `root` named like `name`: no output and no temporary directory either. */
  async function assertNothingWritten(name: string): Promise<void> {
    assert.deepEqual(
      (await readdir(root)).filter((f) => f.startsWith(name)),
      [],
    );
  }

  /** A copy of the exported checkpoint (or of `from`), changed by `edit`. */
  async function hfVariant(
    name: string,
    edit: (dir: string) => Promise<void>,
    from = hfDir,
  ): Promise<string> {
    const dir = join(root, `src-${name}`);
    await cp(from, dir, { recursive: true });
    await edit(dir);
    return dir;
  }

  /** Importing `dir` fails with `code` and messages matching `patterns`, and writes nothing. */
  async function importFails(dir: string, code: string, ...patterns: RegExp[]): Promise<CodedError> {
    const out = `out-${dir.split('/').pop()}`;
    let error: CodedError | undefined;
    await assert.rejects(importHfCheckpoint(dir, join(root, out)), (e: CodedError) => {
      assert.equal(e.code, code, e.message);
      for (const p of patterns) assert.match(e.message, p);
      error = e;
      return true;
    });
    await assertNothingWritten(out);
    return error as CodedError;
  }

  it('exports the files save_pretrained writes', async () => {
    assert.deepEqual((await readdir(hfDir)).sort(), [
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const config = await readJson(join(hfDir, 'config.json'));
    assert.equal(config.torch_dtype, 'float32');
    assert.equal('transformers_version' in config, false);
    assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
    assert.deepEqual(await readJson(join(hfDir, 'generation_config.json')), {
      bos_token_id: 0,
      eos_token_id: 1,
      pad_token_id: 2,
    });
    assert.deepEqual(await readJson(join(hfDir, 'tokenizer.json')), model.tokenizerJson);
    const { tensors, metadata } = await readSafetensors(join(hfDir, 'model.safetensors'));
    assert.equal(metadata.format, 'pt');
    assert.equal(tensors.has('lm_head.weight'), false, 'tied embeddings: no lm_head.weight');
    assert.deepEqual(tensors.get('model.layers.0.self_attn.k_proj.weight')?.shape, [8, 16]);
    assert.deepEqual(tensors.get('model.layers.1.mlp.down_proj.weight')?.shape, [16, 40]);
    for (const [name, t] of tensors) assert.deepEqual(t.data, model.weights.get(name), name);
  });

  it('export then import gives identical config, tokenizer and weights', async () => {
    const out = join(root, 'reimported');
    const contents = await importHfCheckpoint(hfDir, out);
    assertSameWeights(model.weights, contents.weights);
    const loaded = await loadModelDir(out);
    assert.deepEqual(loaded.config, model.config);
    assert.deepEqual(loaded.tokenizerJson, model.tokenizerJson);
    assertSameWeights(model.weights, loaded.weights);
  });

  it('the re-imported model.onnx computes the same logits in onnxruntime', async () => {
    const out = join(root, 'reimported-ort');
    await importHfCheckpoint(hfDir, out);
    const logits = async (dir: string) => {
      const session = await ort.InferenceSession.create(await readFile(join(dir, 'model.onnx')));
      try {
        const c: LlamaConfig = model.config;
        const ids = [0, 17, 42, 99, 5, 1];
        const shape = [1, ids.length];
        const feeds: Record<string, ort.Tensor> = {
          input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), shape),
          attention_mask: new ort.Tensor(
            'int64',
            BigInt64Array.from(ids, () => 1n),
            shape,
          ),
          position_ids: new ort.Tensor(
            'int64',
            BigInt64Array.from(ids, (_, i) => BigInt(i)),
            shape,
          ),
        };
        const empty = [1, c.num_key_value_heads, 0, headDim(c)];
        for (let i = 0; i < c.num_hidden_layers; i++) {
          feeds[`past_key_values.${i}.key`] = new ort.Tensor('float32', new Float32Array(0), empty);
          feeds[`past_key_values.${i}.value`] = new ort.Tensor('float32', new Float32Array(0), empty);
        }
        const result = await session.run(feeds);
        assert.deepEqual(result.logits?.dims, [1, ids.length, c.vocab_size]);
        return result.logits?.data as Float32Array;
      } finally {
        await session.release();
      }
    };
    const original = await logits(modelDir);
    assert.ok(original.some((v) => v !== 0));
    assert.deepEqual(await logits(out), original);
  });

  it('keeps a separate lm_head.weight when the embeddings are not tied', async () => {
    const untied = tinyModel({ tie_word_embeddings: false }, 11);
    await saveModelDir(join(root, 'untied'), untied);
    await exportHfCheckpoint(join(root, 'untied'), join(root, 'untied-hf'));
    const { tensors } = await readSafetensors(join(root, 'untied-hf', 'model.safetensors'));
    assert.deepEqual(tensors.get('lm_head.weight')?.data, untied.weights.get('lm_head.weight'));
    const back = await importHfCheckpoint(join(root, 'untied-hf'), join(root, 'untied-back'));
    assert.equal(back.config.tie_word_embeddings, false);
    assertSameWeights(untied.weights, back.weights);

    // A hand-written config.json without tie_word_embeddings follows the weights.
    const config = await readJson(join(root, 'untied-hf', 'config.json'));
    delete config.tie_word_embeddings;
    await writeFile(join(root, 'untied-hf', 'config.json'), JSON.stringify(config));
    const inferred = await importHfCheckpoint(join(root, 'untied-hf'), join(root, 'untied-inferred'));
    assert.equal(inferred.config.tie_word_embeddings, false);
  });

  it('imports a sharded checkpoint (model.safetensors.index.json)', async () => {
    const dir = await hfVariant('sharded', async (d) => {
      const tensors = await readTensors(join(d, 'model.safetensors'));
      await rm(join(d, 'model.safetensors'));
      const shards: Map<string, F32Tensor>[] = [new Map(), new Map()];
      const weightMap: Record<string, string> = {};
      const names = [...tensors.keys()];
      names.forEach((name, i) => {
        const shard = i < names.length / 2 ? 0 : 1;
        shards[shard]?.set(name, tensors.get(name) as F32Tensor);
        weightMap[name] = `model-0000${shard + 1}-of-00002.safetensors`;
      });
      for (const [i, shard] of shards.entries())
        await writeSafetensors(join(d, `model-0000${i + 1}-of-00002.safetensors`), shard, { format: 'pt' });
      await writeFile(
        join(d, 'model.safetensors.index.json'),
        JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
      );
    });
    const back = await importHfCheckpoint(dir, join(root, 'sharded-back'));
    assertSameWeights(model.weights, back.weights);

    const missingShard = await hfVariant(
      'missing-shard',
      (d) => rm(join(d, 'model-00002-of-00002.safetensors')),
      dir,
    );
    await importFails(missingShard, 'NOT_FOUND', /model-00002-of-00002\.safetensors/);

    const wrongMap = await hfVariant(
      'wrong-map',
      async (d) => {
        const index = await readJson(join(d, 'model.safetensors.index.json'));
        index.weight_map['model.norm.weight'] = 'model-00001-of-00002.safetensors';
        await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify(index));
      },
      dir,
    );
    await importFails(
      wrongMap,
      'INVALID_ARGUMENT',
      /model\.safetensors\.index\.json: weight_map puts model\.norm\.weight in model-00001-of-00002\.safetensors, but that file has no tensor/,
    );
  });

  it('accepts what HF tools write: extra config fields, a null pad id, a copy of a tied lm_head, rotary buffers', async () => {
    const dir = await hfVariant('hf-extras', async (d) => {
      const config = await readJson(join(d, 'config.json'));
      Object.assign(config, {
        transformers_version: '4.46.0',
        use_cache: true,
        attention_bias: false,
        rope_scaling: null,
        pad_token_id: null,
      });
      await writeFile(join(d, 'config.json'), JSON.stringify(config));
      const tensors = await readTensors(join(d, 'model.safetensors'));
      tensors.set('lm_head.weight', tensors.get('model.embed_tokens.weight') as F32Tensor);
      tensors.set('model.layers.0.self_attn.rotary_emb.inv_freq', {
        shape: [2],
        data: new Float32Array([1, 0.1]),
      });
      await writeSafetensors(join(d, 'model.safetensors'), tensors, { format: 'pt' });
    });
    const back = await importHfCheckpoint(dir, join(root, 'hf-extras-back'));
    assert.deepEqual(back.config, model.config);
    assertSameWeights(model.weights, back.weights);

    // A hand-written config.json without tie_word_embeddings follows the weights (no lm_head: tied).
    const noTie = await hfVariant('no-tie-field', async (d) => {
      const config = await readJson(join(d, 'config.json'));
      delete config.tie_word_embeddings;
      await writeFile(join(d, 'config.json'), JSON.stringify(config));
    });
    assert.deepEqual((await importHfCheckpoint(noTie, join(root, 'no-tie-back'))).config, model.config);
  });

  it('rejects a tied lm_head.weight that differs from the embedding, telling the user to untie', async () => {
    const dir = await hfVariant('tied-differs', async (d) => {
      const tensors = await readTensors(join(d, 'model.safetensors'));
      const embedding = tensors.get('model.embed_tokens.weight') as F32Tensor;
      const head = { shape: embedding.shape, data: embedding.data.map((v) => v * 2) };
      tensors.set('lm_head.weight', head);
      await writeSafetensors(join(d, 'model.safetensors'), tensors);
    });
    const e = await importFails(
      dir,
      'INVALID_ARGUMENT',
      /tied-differs\/model\.safetensors: lm_head\.weight differs from model\.embed_tokens\.weight/,
      /"tie_word_embeddings": true/,
    );
    assert.match(e.fix ?? '', /set "tie_word_embeddings": false/);
    assert.match(e.field ?? '', /config\.json:tie_word_embeddings$/);
  });

  it('rejects an unknown config field, naming config.json and the field', async () => {
    const dir = await hfVariant('unknown-field', async (d) => {
      const config = await readJson(join(d, 'config.json'));
      config.num_hiden_layers = 2;
      await writeFile(join(d, 'config.json'), JSON.stringify(config));
    });
    const e = await importFails(
      dir,
      'INVALID_ARGUMENT',
      /unknown-field\/config\.json: field "num_hiden_layers" is not a Llama config field \(did you mean num_hidden_layers\?\)/,
    );
    assert.match(e.field ?? '', /config\.json:num_hiden_layers$/);
  });

  it('imports a list of end tokens (HF chat models): the EOS in config.json, the others end generation too', async () => {
    const policy = await loadModelDir(join(root, 'model'));
    const session = await policySession(policy, await readFile(join(root, 'model', 'model.onnx')));
    const greedy = { n: 1, temperature: 1, topP: 1, topK: 0, greedy: true, maxNewTokens: 8, seed: 1 };
    const [free] = await generateTexts(policy, session, [{ ids: [5, 9] }], greedy);
    await session.dispose();
    const ids = free?.response_ids[0] ?? [];
    // The first token not said before it (after the first, if any is): made an end token, generation stops there.
    const k = Math.max(
      0,
      ids.findIndex((id, i) => i > 0 && !ids.slice(0, i).includes(id)),
    );
    const third = ids[k] as number;
    const eos = policy.config.eos_token_id;
    const dir = await hfVariant('eos-list', async (d) => {
      const config = await readJson(join(d, 'config.json'));
      config.eos_token_id = [third, eos];
      await writeFile(join(d, 'config.json'), JSON.stringify(config));
      await writeFile(join(d, 'generation_config.json'), JSON.stringify({ eos_token_id: [eos, third, 7] }));
    });
    const out = join(root, 'eos-list-model');
    const imported = await importHfCheckpoint(dir, out);
    assert.equal(imported.config.eos_token_id, eos, "the tokenizer's EOS stays config.json's");
    assert.deepEqual(imported.endTokenIds, [third, 7]);
    const loaded = await loadModelDir(out);
    assert.deepEqual(loaded.endTokenIds, [third, 7]);
    assert.deepEqual((await readJson(join(out, 'generation_config.json'))).eos_token_id, [eos, third, 7]);
    const s2 = await policySession(loaded, await readFile(join(out, 'model.onnx')));
    const [ended] = await generateTexts(loaded, s2, [{ ids: [5, 9] }], greedy);
    await s2.dispose();
    assert.deepEqual(ended?.response_ids[0], ids.slice(0, k + 1));
    assert.equal(ended?.finish_reasons[0], 'eos');
    assert.equal(ended?.responses[0], policy.tokenizer.decode(ids.slice(0, k)));
    await exportHfCheckpoint(out, join(root, 'eos-list-hf'));
    assert.deepEqual((await readJson(join(root, 'eos-list-hf', 'generation_config.json'))).eos_token_id, [
      eos,
      third,
      7,
    ]);
    // An end token outside the vocabulary is refused, naming the file.
    const bad = await hfVariant('eos-outside', async (d) => {
      await writeFile(join(d, 'generation_config.json'), JSON.stringify({ eos_token_id: [eos, 99999] }));
    });
    await importFails(bad, 'INVALID_ARGUMENT', /end token 99999 is outside the vocabulary/);
  });

  it('rejects a shape mismatch, naming the file, the parameter, the shape found and the shape implied', async () => {
    const dir = await hfVariant('shape', async (d) => {
      const config = await readJson(join(d, 'config.json'));
      config.intermediate_size = 48;
      await writeFile(join(d, 'config.json'), JSON.stringify(config));
    });
    const e = await importFails(
      dir,
      'INVALID_ARGUMENT',
      /shape\/model\.safetensors: model\.layers\.0\.mlp\.(gate|up|down)_proj\.weight has shape \[(40, 16|16, 40)\], .*config\.json implies \[(48, 16|16, 48)\]/,
    );
    assert.match(e.field ?? '', /^model\.layers\.0\.mlp\./);
  });

  it('rejects missing and unexpected parameters', async () => {
    const missing = await hfVariant('missing-param', async (d) => {
      const tensors = await readTensors(join(d, 'model.safetensors'));
      tensors.delete('model.layers.1.post_attention_layernorm.weight');
      await writeSafetensors(join(d, 'model.safetensors'), tensors);
    });
    await importFails(
      missing,
      'INVALID_ARGUMENT',
      /missing-param\/model\.safetensors: missing parameter model\.layers\.1\.post_attention_layernorm\.weight \[16\]/,
    );
    const extra = await hfVariant('extra-layer', async (d) => {
      const tensors = await readTensors(join(d, 'model.safetensors'));
      tensors.set('model.layers.2.input_layernorm.weight', { shape: [16], data: new Float32Array(16) });
      await writeSafetensors(join(d, 'model.safetensors'), tensors);
    });
    await importFails(
      extra,
      'INVALID_ARGUMENT',
      /extra-layer\/model\.safetensors: unexpected parameter model\.layers\.2\.input_layernorm\.weight/,
    );
  });

  it('rejects a corrupt safetensors file, naming it', async () => {
    const dir = await hfVariant('corrupt', async (d) => {
      const bytes = await readFile(join(d, 'model.safetensors'));
      await writeFile(join(d, 'model.safetensors'), bytes.subarray(0, bytes.length - 7));
    });
    await importFails(dir, 'INVALID_ARGUMENT', /^corrupt safetensors file .*corrupt\/model\.safetensors: /);
  });

  it('a missing file is NOT_FOUND naming the path', async () => {
    for (const file of ['config.json', 'tokenizer.json', 'model.safetensors']) {
      const dir = await hfVariant(`no-${file}`, (d) => rm(join(d, file)));
      await importFails(
        dir,
        'NOT_FOUND',
        new RegExp(`no-${file}/${file.replace('.', '\\.')} does not exist`),
      );
    }
    await assert.rejects(exportHfCheckpoint(join(root, 'no-such-model'), join(root, 'out-none')), {
      code: 'NOT_FOUND',
    });
    await assertNothingWritten('out-none');
    const bin = await hfVariant('pytorch', async (d) => {
      await rm(join(d, 'model.safetensors'));
      await writeFile(join(d, 'pytorch_model.bin'), 'pickle');
    });
    const e = await importFails(bin, 'NOT_FOUND');
    assert.match(e.fix ?? '', /safe_serialization=True/);
  });

  it('refuses to replace an existing output unless asked, and then replaces it whole', async () => {
    const out = join(root, 'existing');
    await mkdir(out);
    await writeFile(join(out, 'keep.txt'), 'mine');
    await assert.rejects(importHfCheckpoint(hfDir, out), { code: 'ALREADY_EXISTS' });
    assert.equal(await readFile(join(out, 'keep.txt'), 'utf8'), 'mine');
    await assert.rejects(exportHfCheckpoint(modelDir, out), { code: 'ALREADY_EXISTS' });
    await importHfCheckpoint(hfDir, out, { overwrite: true });
    assert.deepEqual((await readdir(out)).sort(), [
      'config.json',
      'model.onnx',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
  });
});
