/**
 * A tiny model (BPE tokenizer trained on the review corpus, seeded weights) for checkpoint tests, here and in
 * other packages (`@rlhf/ml-engine/test-model`).
 */
import { type LlamaConfig, parseLlamaConfig } from '../model/config.js';
import { initWeights } from '../model/weights.js';
import { Rng } from '../random/rng.js';
import { trainBpe } from '../tokenizer/bpe-trainer.js';
import { reviewCorpus } from '../tokenizer/test-corpus.js';
import type { TokenizerJson } from '../tokenizer/tokenizer-json.js';
import type { ModelDirContents } from './model-dir.js';

let tokenizer: TokenizerJson | undefined;

export function tinyTokenizerJson(): TokenizerJson {
  tokenizer ??= trainBpe(reviewCorpus(300, 1), { vocabSize: 300 });
  return structuredClone(tokenizer);
}

export function tinyConfig(overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return parseLlamaConfig({
    hidden_size: 16,
    intermediate_size: 40,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 304,
    max_position_embeddings: 32,
    ...overrides,
  });
}

export function tinyModel(overrides: Partial<LlamaConfig> = {}, seed = 7): ModelDirContents {
  const config = tinyConfig(overrides);
  return { config, tokenizerJson: tinyTokenizerJson(), weights: initWeights(config, new Rng(seed)) };
}
