/**
 * What a model directory holds, as types only: the tokenizer and sampling code take a loaded model without
 * importing the loader (model-dir.ts), which itself needs the chat-template checks.
 */
import type { LlamaConfig } from '../model/config.js';
import type { Weights } from '../model/weights.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { TokenizerJson } from '../tokenizer/tokenizer-json.js';

export interface ModelDirContents {
  config: LlamaConfig;
  tokenizerJson: TokenizerJson;
  weights: Weights;
  /** The Jinja chat template for `{"messages"}` prompts (tokenizer_config.json's `chat_template`). */
  chatTemplate?: string;
  /** End tokens besides config.eos_token_id (generation_config.json's `eos_token_id` list), see end-tokens.ts. */
  endTokenIds?: number[];
}

export interface LoadedModelDir extends ModelDirContents {
  tokenizer: Tokenizer;
  /** The directory the model was loaded from. */
  dir: string;
}

/** A model directory without its weights: what tokenizing, prompting and sampling through ORT read. */
export type ModelDirInfo = Omit<LoadedModelDir, 'weights'>;
