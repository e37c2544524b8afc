/**
 * The small Llama config the engine's graph, sampling and session tests build on: 2 layers, hidden 32, 4
 * attention heads sharing 2 KV heads, vocabulary 40. `overrides` are config.json fields on top.
 */
import { type LlamaConfig, parseLlamaConfig } from '../model/config.js';

export function tinyLlamaConfig(overrides: Record<string, unknown> = {}): LlamaConfig {
  return parseLlamaConfig({
    hidden_size: 32,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 48,
    vocab_size: 40,
    num_hidden_layers: 2,
    ...overrides,
  });
}
