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

test('every field that changes the computation is parsed or refused naming it', () => {
  // transformers 5 writes rope_theta inside rope_parameters; transformers 4 rope_scaling with "type".
  const v5 = parseLlamaConfig({
    rope_parameters: {
      rope_type: 'llama3',
      rope_theta: 500000,
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 16,
    },
  });
  assert.equal(v5.rope_theta, 500000);
  assert.equal(v5.rope_scaling?.rope_type, 'llama3');
  assert.deepEqual(parseLlamaConfig({ rope_scaling: { type: 'linear', factor: 2 } }).rope_scaling, {
    rope_type: 'linear',
    factor: 2,
  });
  assert.equal(
    parseLlamaConfig({ rope_parameters: { rope_type: 'default', rope_theta: 7 } }).rope_scaling,
    undefined,
  );
  assert.equal(parseLlamaConfig({ hidden_size: 48, num_attention_heads: 4, head_dim: 16 }).head_dim, 16);
  const mistral = parseLlamaConfig({
    model_type: 'mistral',
    architectures: ['MistralForCausalLM'],
    sliding_window: 128,
  });
  assert.equal(headTypeOf(mistral), 'lm');
  const qwen = parseLlamaConfig({
    model_type: 'qwen2',
    architectures: ['Qwen2ForSequenceClassification'],
    use_sliding_window: false,
    sliding_window: 4096,
    max_window_layers: 28,
    layer_types: ['full_attention', 'full_attention'],
    bos_token_id: null,
  });
  assert.equal(headTypeOf(qwen), 'scalar');
  assert.equal(qwen.bos_token_id, null);

  rejects({ rope_scaling: { rope_type: 'yarn', factor: 4 } }, /"rope_scaling" has rope type "yarn"/);
  rejects(
    { rope_scaling: { rope_type: 'linear', factor: 4, attention_factor: 2 } },
    /"rope_scaling" has "attention_factor"/,
  );
  rejects(
    { rope_scaling: { rope_type: 'dynamic', factor: 2, original_max_position_embeddings: 64 } },
    /"rope_scaling".*dynamic/,
  );
  rejects(
    { model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: 64 },
    /"sliding_window" is 64/,
  );
  rejects(
    { model_type: 'mistral', architectures: ['LlamaForCausalLM'] },
    /architectures.*MistralForCausalLM/,
  );
  rejects(
    { model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], use_sliding_window: true },
    /use_sliding_window/,
  );
  rejects({ layer_types: ['sliding_attention', 'full_attention'] }, /layer_types/);
  rejects({ attention_dropout: 0.1 }, /attention_dropout/);
  rejects({ attention_bias: 'yes' }, /attention_bias/);
  rejects({ head_dim: 7 }, /head_dim.*even/);
  rejects({ architectures: ['LlamaForSequenceClassification'], num_labels: 2 }, /num_labels/);
  rejects({ model_type: 'gemma' }, /model_type/);
});
