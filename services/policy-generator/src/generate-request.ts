/**
 * GenerateRequest / GenerateStreamRequest checks, in two steps: the request alone (before any model is
 * loaded: prompts, n, sampling, limits, UTF-8), then against the loaded model (token ids inside the
 * vocabulary, prompt + max_new_tokens within the model's positions). Bad fields are INVALID_ARGUMENT
 * named by their proto path (`prompts[2]`, `sampling.top_p`); anything over the server's limits is
 * RESOURCE_EXHAUSTED naming the field that carries it. (Invalid UTF-8 is found in the raw bytes before the
 * handler runs: see utf8-schemas.ts.)
 */
import { chatPrompt, promptIds, promptText } from '@rlhf/ml-engine';
import { invalidArgument, RlhfError } from '@rlhf/platform';
import type { GenerateRequest, GenerateStreamRequest } from '@rlhf/proto';
import type { LoadedModel } from '@rlhf/service-kit';
import {
  checkN,
  checkSamplingParams,
  type GenerateLimits,
  type SamplingSettings,
} from './sampling-settings.js';

/** A prompt as text, as token ids, or as a chat conversation (rendered with the model's template). */
export type PromptSource =
  | { text: string }
  | { ids: number[] }
  | { messages: Array<{ role: string; content: string }> };

export interface CheckedGenerate {
  prompts: PromptSource[];
  n: number;
  sampling: SamplingSettings;
  firstPromptIndex: number;
  /** The request field the prompts came from, for messages naming one of them. */
  promptField: 'prompts' | 'prompt_token_ids' | 'conversations';
}

const textLength = (p: PromptSource): number =>
  'text' in p ? p.text.length : 'messages' in p ? p.messages.reduce((n, m) => n + m.content.length, 0) : 0;

export function checkGenerateRequest(
  req: GenerateRequest | GenerateStreamRequest,
  limits: GenerateLimits,
): CheckedGenerate {
  const given = {
    prompts: req.prompts.map((text): PromptSource => ({ text })),
    prompt_token_ids: req.promptTokenIds.map((p): PromptSource => ({ ids: [...p.ids] })),
    conversations: req.conversations.map(
      (c): PromptSource => ({
        messages: c.messages.map((m) => ({ role: m.role, content: m.content })),
      }),
    ),
  };
  const used = (Object.keys(given) as Array<keyof typeof given>).filter((k) => given[k].length > 0);
  if (used.length > 1) {
    throw invalidArgument(
      used[1] as string,
      `give one of prompts, prompt_token_ids and conversations, not ${used.join(' and ')}`,
      'send the prompts in one form',
    );
  }
  const promptField = used[0] ?? 'prompts';
  const prompts = given[promptField];
  const count = prompts.length;
  if (count === 0)
    throw invalidArgument(
      'prompts',
      'must not be empty',
      'give at least one prompt (or prompt_token_ids, or conversations)',
    );
  prompts.forEach((p, i) => {
    if ('messages' in p && p.messages.length === 0)
      throw invalidArgument(`conversations[${i}].messages`, 'must not be empty', 'give at least one message');
  });
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
  prompts.forEach((p, i) => {
    const chars = textLength(p);
    if (chars > limits.maxChars) {
      throw new RlhfError(
        'RESOURCE_EXHAUSTED',
        `has ${chars} characters, more than the limit ${limits.maxChars}`,
        {
          field: `${promptField}[${i}]`,
        },
      );
    }
  });
  return { prompts, n, sampling, firstPromptIndex: req.firstPromptIndex, promptField };
}

/** A prompt ready for the sampler: its ids (prompt-ids.ts), and its text for the reply. */
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
      `${sampling.maxNewTokens} new tokens do not fit the model's ${maxLen} positions after a one-token prompt`,
      { field: `${samplingField}.max_new_tokens`, fix: `ask for at most ${maxLen - 1}` },
    );
  }
  const chat = chatPrompt(model.model);
  return prompts.map((given, i) => {
    // Ids verbatim, text with the tokenizer's own special tokens, chat through the template (prompt-ids.ts).
    const p = 'messages' in given ? chat(given.messages, promptField(i)) : given;
    if ('ids' in p) {
      const outside = p.ids.findIndex((id) => id >= vocab || id >= tok.vocabSize);
      if (outside >= 0)
        throw invalidArgument(
          `${promptField(i)}`,
          `token id ${p.ids[outside]} (at ${outside}) is outside the vocabulary (size ${Math.min(vocab, tok.vocabSize)})`,
          "tokenize with the model's own tokenizer",
        );
    }
    const ids = promptIds(tok, p);
    if (ids.length === 0)
      throw invalidArgument(promptField(i), 'has no tokens', 'give at least one token or some text');
    if (ids.length + sampling.maxNewTokens > maxLen) {
      throw invalidArgument(
        promptField(i),
        `has ${ids.length} tokens; with max_new_tokens ${sampling.maxNewTokens} that exceeds the model's ${maxLen} positions`,
        'shorten the prompt or lower max_new_tokens',
      );
    }
    return { ids, text: 'ids' in p ? promptText(tok, p.ids) : p.text };
  });
}
