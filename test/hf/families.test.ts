/**
 * Model families checked against transformers: small random checkpoints made and saved by transformers in
 * the reference Python environment (Llama with llama3 / linear / dynamic rope scaling and an explicit
 * head_dim, Llama with biases, Mistral, Qwen2, Llama (one and two labels) and Qwen2 sequence-classification
 * reward heads), their
 * token ids from AutoTokenizer, logits and greedy continuations from transformers' own forward pass. Each is imported with
 * `rlhf model import`, and the engine must tokenize, score and decode as transformers did; exported again
 * with `rlhf model export`, transformers must load it as the same model.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  generate,
  headDim,
  type LoadedModelDir,
  loadModelDir,
  OrtSession,
  type TensorValue,
  textPromptIds,
} from '@rlhf/ml-engine';
import { runCli } from '../helpers/cli.js';
import { runReferencePython } from '../helpers/python-env.js';

interface Reference {
  prompt: string;
  ids: number[];
  logits?: number[];
  greedy?: number[];
  score?: number;
}

let dir = '';
let reference: Record<string, Reference>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hf-families-'));
  reference = JSON.parse(runReferencePython('test/hf/make_checkpoints.py', [join(dir, 'hf')]));
});
after(() => rm(dir, { recursive: true, force: true }));

async function imported(name: string): Promise<{ model: LoadedModelDir; session: OrtSession }> {
  const out = join(dir, 'models', name);
  const r = await runCli(['model', 'import', '--from', join(dir, 'hf', name), '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const model = await loadModelDir(out);
  return { model, session: await OrtSession.create(await readFile(join(out, 'model.onnx'))) };
}

function feeds(model: LoadedModelDir, ids: number[]): Record<string, TensorValue> {
  const c = model.config;
  const n = ids.length;
  const f: Record<string, TensorValue> = {
    input_ids: { data: BigInt64Array.from(ids.map(BigInt)), dims: [1, n] },
    attention_mask: { data: new BigInt64Array(n).fill(1n), dims: [1, n] },
  };
  if (c.architectures[0]?.endsWith('ForSequenceClassification')) return f;
  f.position_ids = { data: BigInt64Array.from(ids.map((_, t) => BigInt(t))), dims: [1, n] };
  for (let i = 0; i < c.num_hidden_layers; i++)
    for (const part of ['key', 'value'])
      f[`past_key_values.${i}.${part}`] = {
        data: new Float32Array(0),
        dims: [1, c.num_key_value_heads, 0, headDim(c)],
      };
  return f;
}

describe('imported checkpoints compute what transformers computes', () => {
  for (const name of ['llama3-rope', 'linear-rope', 'dynamic-rope', 'biases', 'mistral', 'qwen2']) {
    test(`${name}: token ids, logits and greedy decoding`, async () => {
      const ref = reference[name] as Reference;
      const { model, session } = await imported(name);
      assert.deepEqual(textPromptIds(model.tokenizer, ref.prompt), ref.ids);
      if (name === 'qwen2') {
        // No BOS in, no BOS out: EOS never stands in for it.
        assert.equal(model.config.bos_token_id, null);
        assert.equal(model.tokenizer.bosId, undefined);
      }
      const out = await session.run(feeds(model, ref.ids), ['logits']);
      const logits = out.logits?.data as Float32Array;
      const expected = ref.logits as number[];
      assert.equal(logits.length, expected.length);
      let worst = 0;
      let scale = 0;
      expected.forEach((v, i) => {
        worst = Math.max(worst, Math.abs((logits[i] as number) - v));
        scale = Math.max(scale, Math.abs(v));
      });
      assert.ok(
        worst <= 1e-4 * Math.max(1, scale),
        `${name}: logits differ by up to ${worst} (scale ${scale})`,
      );
      const [sample] = await generate(session, model.config, [{ promptIds: ref.ids, n: 1 }], {
        temperature: 1,
        topP: 1,
        topK: 0,
        greedy: true,
        maxNewTokens: (ref.greedy as number[]).length,
        seed: 1,
        eosId: -1,
        padId: model.tokenizer.padId,
      });
      assert.deepEqual(sample?.tokenIds, ref.greedy);
    });
  }

  test('exported again, each loads in transformers with the same class and logits', async () => {
    const names = ['llama3-rope', 'biases', 'mistral', 'qwen2'];
    const pairs: string[] = [];
    for (const name of names) {
      const exported = join(dir, 'exported', name);
      const r = await runCli([
        'model',
        'export',
        '--model',
        join(dir, 'models', name),
        '--format',
        'safetensors',
        '--out',
        exported,
      ]);
      assert.equal(r.code, 0, r.stderr);
      pairs.push(join(dir, 'hf', name), exported);
    }
    const results = JSON.parse(runReferencePython('test/hf/compare_exports.py', pairs)) as {
      class: string;
      max_diff: number;
    }[];
    assert.deepEqual(
      results.map((r) => r.class),
      ['LlamaForCausalLM', 'LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'],
    );
    for (const r of results) assert.ok(r.max_diff <= 1e-6, JSON.stringify(r));
  });

  // two-label-reward: num_labels 2, scored as logit[1] - logit[0] of transformers' two logits.
  for (const name of ['reward', 'two-label-reward', 'qwen2-reward'])
    test(`${name}: a sequence-classification head scores the last token as transformers does`, async () => {
      const ref = reference[name] as Reference;
      const { model, session } = await imported(name);
      assert.deepEqual(textPromptIds(model.tokenizer, ref.prompt), ref.ids);
      const out = await session.run(feeds(model, ref.ids), ['scores']);
      const scores = out.scores?.data as Float32Array | undefined;
      assert.ok(scores, 'the reward model returns scores');
      const score = scores[0] as number;
      assert.ok(Math.abs(score - (ref.score as number)) <= 1e-4, `score ${score}, transformers ${ref.score}`);
    });
});
