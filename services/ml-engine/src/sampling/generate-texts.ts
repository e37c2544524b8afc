/**
 * Text in, text out: prompts (text or ids) through a loaded model directory to completions, in the
 * generations format of docs/ARCHITECTURE.md ({"prompt", "responses", ...}). The policy-generator service and
 * `rlhf generate` both call this.
 */
import type { ModelDirInfo } from '../checkpoint/loaded-model.js';
import { EngineError, invalidInput } from '../engine-error.js';
import { headTypeOf } from '../model/config.js';
import { inferenceSessionOptions, type ModelRunner, OrtSession } from '../runtime/ort-session.js';
import { promptIds, promptText } from '../tokenizer/prompt-ids.js';
import { type FinishReason, generate, type Sample } from './generate.js';
import type { PromptInput } from './prompt-input.js';
import type { SamplingParams } from './sample-token.js';

export interface TextGenerationOptions extends SamplingParams {
  n: number;
  maxNewTokens: number;
  seed: number;
  /** Global index of the first prompt (for per-prompt RNG streams when a dataset is split into shards). */
  firstPromptIndex?: number;
  maxBatch?: number;
  useCache?: boolean;
}

export interface Generation {
  prompt: string;
  responses: string[];
  response_ids: number[][];
  logprobs: number[][];
  finish_reasons: FinishReason[];
}

export type { PromptInput } from './prompt-input.js';

export function checkSampling(o: TextGenerationOptions, maxN = 1024): void {
  if (!(Number.isInteger(o.n) && o.n >= 1 && o.n <= maxN))
    throw invalidInput(`n must be an integer in 1..${maxN}, got ${o.n}`, 'n');
  if (!(o.temperature >= 0))
    throw invalidInput(`temperature must be >= 0, got ${o.temperature}`, 'temperature');
  if (!(o.topP > 0 && o.topP <= 1)) throw invalidInput(`top_p must be in (0, 1], got ${o.topP}`, 'top_p');
  if (!(Number.isInteger(o.topK) && o.topK >= 0))
    throw invalidInput(`top_k must be a non-negative integer, got ${o.topK}`, 'top_k');
  if (!(Number.isInteger(o.maxNewTokens) && o.maxNewTokens >= 1))
    throw invalidInput(`max_new_tokens must be a positive integer, got ${o.maxNewTokens}`, 'max_new_tokens');
}

/** A session for a loaded LM; FAILED_PRECONDITION for a reward model. */
export async function policySession(model: ModelDirInfo, modelBytes: Uint8Array): Promise<OrtSession> {
  if (headTypeOf(model.config) !== 'lm') {
    throw new EngineError(
      'FAILED_PRECONDITION',
      `${model.dir} is a reward model (scalar head), not a policy`,
      {
        field: 'model',
        fix: 'pass a policy model (architectures LlamaForCausalLM)',
      },
    );
  }
  // model.onnx.data, when the weights are outside model.onnx, sits beside it in the model's directory.
  return OrtSession.create(modelBytes, { ...inferenceSessionOptions, externalDataDir: model.dir });
}

/**
 * Each prompt as the generator's row: its ids verbatim, or its text with the tokenizer's own special tokens
 * (tokenizer/prompt-ids.ts). INVALID_ARGUMENT naming the
 * prompt by its place among all the caller's prompts (`first` counts the earlier ones) for an id outside the
 * vocabulary, or a prompt that leaves no room for `maxNewTokens`.
 */
export function promptRows(
  model: ModelDirInfo,
  prompts: readonly PromptInput[],
  maxNewTokens: number,
  first = 0,
): number[][] {
  const tok = model.tokenizer;
  const maxLen = model.config.max_position_embeddings;
  return prompts.map((p, k) => {
    const i = first + k;
    const row = promptIds(tok, p);
    if (row.length === 0)
      throw invalidInput(`prompt ${i + 1} has no tokens`, `prompts[${i}]`, 'give at least one token');
    for (const id of row) {
      if (!Number.isInteger(id) || id < 0 || id >= model.config.vocab_size) {
        throw invalidInput(
          `prompt ${i + 1}: token id ${id} is outside the vocabulary (size ${model.config.vocab_size})`,
          `prompts[${i}]`,
        );
      }
    }
    if (row.length + maxNewTokens > maxLen) {
      throw invalidInput(
        `prompt ${i + 1} has ${row.length} tokens; with max_new_tokens ${maxNewTokens} it exceeds the model's ${maxLen} positions`,
        `prompts[${i}]`,
        'shorten the prompt or lower max_new_tokens',
      );
    }
    return row;
  });
}

export async function generateTexts(
  model: ModelDirInfo,
  session: ModelRunner,
  prompts: readonly PromptInput[],
  o: TextGenerationOptions,
): Promise<Generation[]> {
  checkSampling(o);
  if (prompts.length === 0) throw invalidInput('no prompts given', 'prompts', 'pass at least one prompt');
  const tok = model.tokenizer;
  const first = o.firstPromptIndex ?? 0;
  const ids = promptRows(model, prompts, o.maxNewTokens, first);
  const samples = await generate(
    session,
    model.config,
    ids.map((promptIds, i) => ({ promptIds, n: o.n, promptIndex: first + i })),
    {
      ...o,
      eosId: tok.eosId,
      padId: tok.padId,
      endIds: model.endTokenIds ?? [],
      sampleVocab: Math.min(tok.vocabSize, model.config.vocab_size),
    },
  );
  const byPrompt = new Map<number, typeof samples>();
  for (const s of samples) {
    const list = byPrompt.get(s.promptIndex);
    if (list) list.push(s);
    else byPrompt.set(s.promptIndex, [s]);
  }
  return prompts.map((p, i) => {
    const mine = byPrompt.get(first + i) ?? [];
    // A sample that ended on EOS (or another end token) ends with it: the text leaves it out.
    const strip = (s: Sample): number[] => (s.finishReason === 'eos' ? s.tokenIds.slice(0, -1) : s.tokenIds);
    return {
      prompt: 'ids' in p ? promptText(tok, p.ids) : p.text,
      responses: mine.map((s) => tok.decode(strip(s))),
      response_ids: mine.map((s) => s.tokenIds),
      logprobs: mine.map((s) => s.logprobs),
      finish_reasons: mine.map((s) => s.finishReason),
    };
  });
}
