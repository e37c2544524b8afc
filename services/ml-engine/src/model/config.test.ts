import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineError } from '../engine-error.js';
import { defaultLlamaConfig, headTypeOf, parameterCount, parseLlamaConfig } from './config.js';

function rejects(raw: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseLlamaConfig(raw, 'm/config.json'),
    (e: unknown) => e instanceof EngineError && e.code === 'INVALID_ARGUMENT' && pattern.test(e.message),
  );
}

test('partial configs take defaults; HF-only fields are accepted', () => {
  const c = parseLlamaConfig({ hidden_size: 64, num_attention_heads: 4, torch_dtype: 'float32' });
  assert.equal(c.hidden_size, 64);
  assert.equal(c.num_key_value_heads, defaultLlamaConfig.num_key_value_heads);
  assert.equal(headTypeOf(c), 'lm');
  const rm = parseLlamaConfig({ architectures: ['LlamaForSequenceClassification'] });
  assert.equal(headTypeOf(rm), 'scalar');
  assert.equal(rm.tie_word_embeddings, false);
});

test('bad configs name the file and field', () => {
  rejects(
    { hiden_size: 64 },
    /m\/config\.json: field "hiden_size" is not a Llama config field \(did you mean hidden_size\?\)/,
  );
  rejects({ hidden_size: 65 }, /hidden_size.*divisible by num_attention_heads/);
  rejects({ num_key_value_heads: 3 }, /num_key_value_heads.*must divide/);
  rejects({ vocab_size: 2 }, /bos_token_id|eos_token_id|pad_token_id/);
  rejects({ rms_norm_eps: 0 }, /rms_norm_eps.*> 0/);
  rejects({ architectures: ['GPT2LMHeadModel'] }, /architectures/);
  rejects([], /expected a JSON object/);
});

test('parameter count of the default model', () => {
  const c = defaultLlamaConfig;
  // embed 512*128, per layer: q,o 128*128 each, k,v 128*64 each, mlp 3*128*344, 2 norms; final norm; tied head
  const expected = 512 * 128 + 2 * (2 * 128 * 128 + 2 * 128 * 64 + 3 * 128 * 344 + 2 * 128) + 128;
  assert.equal(parameterCount(c), expected);
});
