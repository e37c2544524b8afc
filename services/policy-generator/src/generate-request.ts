/**
 * GenerateRequest / GenerateStreamRequest checks, in two steps: the request alone (before any model is
 * loaded: prompts, n, sampling, limits, UTF-8), then against the loaded model (token ids inside the
 * vocabulary, prompt + max_new_tokens within the model's positions). Bad fields are INVALID_ARGUMENT
 * named by their proto path (`prompts[2]`, `sampling.top_p`); anything over the server's limits is
 * RESOURCE_EXHAUSTED naming the field that carries it. (Invalid UTF-8 is found in the raw bytes before the
 * handler runs: see utf8-schemas.ts.)
 */
import { invalidArgument, RlhfError } from '@rlhf/platform';
import type { GenerateRequest, GenerateStreamRequest } from '@rlhf/proto';
import type { LoadedModel } from '@rlhf/service-kit';
import {
  checkN,
  checkSamplingParams,
  type GenerateLimits,
  type SamplingSettings,
} from './sampling-settings.js';

export type PromptSource = { text: string } | { ids: number[] };

export interface CheckedGenerate {
  prompts: PromptSource[];
  n: number;
  sampling: SamplingSettings;
  firstPromptIndex: number;
  /** The request field the prompts came from, for messages naming one of them. */
  promptField: 'prompts' | 'prompt_token_ids';
}

export function checkGenerateRequest(
  req: GenerateRequest | GenerateStreamRequest,
  limits: GenerateLimits,
): CheckedGenerate {
  const texts = req.prompts;
  const ids = req.promptTokenIds;
  if (texts.length > 0 && ids.length > 0) {
    throw invalidArgument(
      'prompt_token_ids',
      'give prompts or prompt_token_ids, not both',
      'send the prompts as text or as ids',
    );
  }
  const count = texts.length + ids.length;
  const promptField = ids.length > 0 ? 'prompt_token_ids' : 'prompts';
  if (count === 0)
    throw invalidArgument('prompts', 'must not be empty', 'give at least one prompt (or prompt_token_ids)');
  if (count > limits.maxPrompts) {
    throw new RlhfError(
      'RESOURCE_EXHAUSTED',
      `has ${count} prompts, more than the server's limit of ${limits.maxPrompts}`,
      { field: promptField, fix: 'split the request' },
    );
  }
  const n = checkN(req.n, limits);
  if (count * n > limits.maxCompletions) {
    throw new RlhfError(
      'RESOURCE_EXHAUSTED',
      `${count} prompts x n ${n} = ${count * n} completions, more than the server's limit of ${limits.maxCompletions}`,
      { field: promptField, fix: 'split the request or lower n' },
    );
  }
  const sampling = checkSamplingParams(req.sampling, limits);
  texts.forEach((t, i) => {
    if (t.length > limits.maxChars) {
      throw new RlhfError(
        'RESOURCE_EXHAUSTED',
        `has ${t.length} characters, more than the limit ${limits.maxChars}`,
        { field: `prompts[${i}]` },
      );
    }
  });
  const prompts: PromptSource[] =
    promptField === 'prompts' ? texts.map((text) => ({ text })) : ids.map((p) => ({ ids: [...p.ids] }));
  return { prompts, n, sampling, firstPromptIndex: req.firstPromptIndex, promptField };
}

/** A prompt ready for the sampler: BOS + its ids, and its text for the reply. */
export interface PreparedPrompt {
  ids: number[];
  text: string;
}

/**
 * Tokenizes the prompts and checks them and the sampling settings against the model. `promptField(i)`
 * names prompt i in errors (`prompts[3]` for a call, `<input>:<line>` for a shard); `samplingField` names
 * the sampling message.
 */
export function prepareGeneration(
  model: LoadedModel,
  prompts: readonly PromptSource[],
  sampling: SamplingSettings,
  promptField: (i: number) => string,
  samplingField = 'sampling',
): PreparedPrompt[] {
  const { config, tokenizer: tok } = model.model;
  const vocab = config.vocab_size;
  const maxLen = config.max_position_embeddings;
  sampling.stopIds.forEach((id, j) => {
    if (id >= vocab)
      throw invalidArgument(
        `${samplingField}.stop_token_ids[${j}]`,
        `${id} is outside the model's vocabulary (size ${vocab})`,
      );
  });
  if (sampling.maxNewTokens + 1 > maxLen) {
    throw new RlhfError(
      'RESOURCE_EXHAUSTED',
      `${sampling.maxNewTokens} new tokens do not fit the model's ${maxLen} positions even after an empty prompt (BOS takes one)`,
      { field: `${samplingField}.max_new_tokens`, fix: `ask for at most ${maxLen - 1}` },
    );
  }
  return prompts.map((p, i) => {
    let body: number[];
    if ('ids' in p) {
      const outside = p.ids.findIndex((id) => id >= vocab || id >= tok.vocabSize);
      if (outside >= 0)
        throw invalidArgument(
          `${promptField(i)}`,
          `token id ${p.ids[outside]} (at ${outside}) is outside the vocabulary (size ${Math.min(vocab, tok.vocabSize)})`,
          "tokenize with the model's own tokenizer",
        );
      body = p.ids;
    } else body = tok.encode(p.text);
    const ids = [tok.bosId, ...body];
    if (ids.length + sampling.maxNewTokens > maxLen) {
      throw invalidArgument(
        promptField(i),
        `has ${ids.length} tokens (BOS included); with max_new_tokens ${sampling.maxNewTokens} that exceeds the model's ${maxLen} positions`,
        'shorten the prompt or lower max_new_tokens',
      );
    }
    return { ids, text: 'ids' in p ? tok.decode(p.ids) : p.text };
  });
}
