/**
 * The JSON bodies of POST /v1/completions and /v1/chat/completions, checked field by field and turned into
 * the GenerateRequest the gRPC API takes (so both run the same checks, limits and sampler). Everything in a
 * body is untrusted: unknown fields are refused rather than silently ignored, and every value's type and
 * range is checked here before the shared checks (sampling-settings.ts, generate-request.ts) apply the
 * server's limits. The fields follow OpenAI's API plus vLLM's extensions for RLHF (`top_k`,
 * `stop_token_ids`, `return_token_ids`, `return_tokens_as_token_ids`, `prompt_logprobs`).
 */

import { MAX_TOP_LOGPROBS } from '@rlhf/ml-engine';
import type { GenerateRequest, SamplingParams } from '@rlhf/proto';
import { badParam } from './openai-error.js';

export type Body = Record<string, unknown>;

/** What the response needs to know about the request, beside the GenerateRequest itself. */
export interface OpenAiJob {
  kind: 'completion' | 'chat';
  model: string;
  request: Omit<GenerateRequest, 'model'>;
  stream: boolean;
  /** With stream: a last chunk with the usage (stream_options.include_usage). */
  streamUsage: boolean;
  /** Sampled tokens' log-probs in the choices. */
  logprobs: boolean;
  /** The most likely alternatives listed per token with logprobs (completions `logprobs`, chat `top_logprobs`). */
  topLogprobs: number;
  /** Completions: the prompt before each choice's text. */
  echo: boolean;
  /** vLLM: `prompt_token_ids` and each choice's `token_ids`. */
  returnTokenIds: boolean;
  /** vLLM: tokens in logprobs as `token_id:<id>` rather than their text. */
  tokensAsIds: boolean;
  /** vLLM: each prompt token's log-prob given the tokens before it, with this many alternatives; null: none. */
  promptLogprobs: number | null;
}

const common = [
  'model',
  'n',
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'seed',
  'stop',
  'stop_token_ids',
  'stream',
  'stream_options',
  'user',
  'frequency_penalty',
  'presence_penalty',
  'logit_bias',
  'return_token_ids',
  'return_tokens_as_token_ids',
  'prompt_logprobs',
];
const completionFields = new Set([...common, 'prompt', 'echo', 'logprobs', 'best_of', 'suffix']);
const chatFields = new Set([...common, 'messages', 'logprobs', 'top_logprobs', 'max_completion_tokens']);

const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);
const given = (b: Body, k: string): boolean => b[k] !== undefined && b[k] !== null;

function checkKnown(body: Body, known: Set<string>): void {
  for (const k of Object.keys(body))
    if (!known.has(k)) throw badParam(k, 'is not a parameter this server knows; leave it out');
}

function bool(body: Body, k: string): boolean {
  const v = body[k];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw badParam(k, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function int(body: Body, k: string, min: number, max: number): number | undefined {
  const v = body[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw badParam(k, `must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

function num(body: Body, k: string): number | undefined {
  const v = body[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw badParam(k, `must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function tokenIds(v: unknown, param: string): number[] | null {
  if (!Array.isArray(v)) return null;
  if (!v.every((t) => typeof t === 'number' && Number.isInteger(t) && t >= 0 && t < 2 ** 31)) {
    throw badParam(param, 'token ids must be integers in 0..2^31-1');
  }
  return v as number[];
}

/** Parameters accepted for compatibility only with their neutral value: anything else would be ignored. */
function checkNeutral(body: Body, n: number): void {
  for (const k of ['frequency_penalty', 'presence_penalty'])
    if (given(body, k) && body[k] !== 0)
      throw badParam(k, 'is not supported by this server; leave it unset or 0');
  if (given(body, 'logit_bias') && !(isObject(body.logit_bias) && Object.keys(body.logit_bias).length === 0))
    throw badParam('logit_bias', 'is not supported by this server; leave it unset');
  if (given(body, 'best_of') && body.best_of !== n)
    throw badParam('best_of', 'is not supported by this server; leave it unset (or equal to n)');
  if (given(body, 'suffix')) throw badParam('suffix', 'is not supported by this server; leave it unset');
  if (given(body, 'user') && typeof body.user !== 'string') throw badParam('user', 'must be a string');
}

function sampling(body: Body, maxTokens: number | undefined): SamplingParams {
  const temperature = num(body, 'temperature');
  const topP = num(body, 'top_p');
  // vLLM spells "every token" -1 (and 0); the proto spells it 0.
  const topK = int(body, 'top_k', -1, 2 ** 31 - 1);
  // The gRPC seed is a uint32: the same range here, so both APIs draw from the same streams.
  const seed = int(body, 'seed', 0, 2 ** 32 - 1);
  let stop: string[] = [];
  if (given(body, 'stop')) {
    const v = body.stop;
    if (typeof v === 'string') stop = [v];
    else if (Array.isArray(v) && v.every((s) => typeof s === 'string')) stop = v as string[];
    else throw badParam('stop', 'must be a string or a list of strings');
  }
  const stopTokenIds = given(body, 'stop_token_ids') ? tokenIds(body.stop_token_ids, 'stop_token_ids') : [];
  if (stopTokenIds === null) throw badParam('stop_token_ids', 'must be a list of token ids');
  return {
    ...(temperature === undefined ? {} : { temperature }),
    ...(topP === undefined ? {} : { topP }),
    topK: topK === undefined || topK < 0 ? 0 : topK,
    ...(maxTokens === undefined ? {} : { maxNewTokens: maxTokens }),
    ...(seed === undefined ? {} : { seed }),
    stop,
    stopTokenIds,
    greedy: false,
  };
}

/** A count of alternatives per token: 0..20, as OpenAI and vLLM allow. */
function topCount(body: Body, k: string): number | undefined {
  const v = body[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_TOP_LOGPROBS)
    throw badParam(
      k,
      `must be an integer in 0..${MAX_TOP_LOGPROBS} (alternatives per token, at most ${MAX_TOP_LOGPROBS}), got ${JSON.stringify(v)}`,
    );
  return v;
}

/** prompt_logprobs: each prompt token's log-prob, with k alternatives; computed once, before any answer. */
function promptLogprobsOf(body: Body, stream: boolean): number | null {
  const k = topCount(body, 'prompt_logprobs');
  if (k === undefined) return null;
  if (stream)
    throw badParam('prompt_logprobs', 'is not available with stream: true; ask it without streaming');
  return k;
}

function modelOf(body: Body): string {
  if (typeof body.model !== 'string' || body.model === '')
    throw badParam('model', 'is required: one of the ids GET /v1/models lists');
  if (body.model.length > 4096) throw badParam('model', 'is longer than 4096 characters');
  return body.model;
}

function streamOf(body: Body): { stream: boolean; streamUsage: boolean } {
  const stream = bool(body, 'stream');
  let streamUsage = false;
  if (given(body, 'stream_options')) {
    if (!stream) throw badParam('stream_options', 'is only allowed with stream: true');
    const o = body.stream_options;
    if (!isObject(o)) throw badParam('stream_options', 'must be an object');
    for (const k of Object.keys(o))
      if (k !== 'include_usage') throw badParam(`stream_options.${k}`, 'is not supported; leave it out');
    streamUsage = bool(o, 'include_usage');
  }
  return { stream, streamUsage };
}

/** OpenAI's default for /v1/completions when max_tokens is unset. */
const completionDefaultMaxTokens = 16;

export function parseCompletionBody(body: unknown): OpenAiJob {
  if (!isObject(body)) throw badParam('body', 'must be a JSON object');
  checkKnown(body, completionFields);
  const model = modelOf(body);
  const n = int(body, 'n', 1, 2 ** 31 - 1) ?? 1;
  checkNeutral(body, n);
  const p = body.prompt;
  let prompts: string[] = [];
  let promptTokenIds: Array<{ ids: number[] }> = [];
  if (typeof p === 'string') prompts = [p];
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string')) prompts = p as string[];
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'number'))
    promptTokenIds = [{ ids: tokenIds(p, 'prompt') as number[] }];
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => Array.isArray(x)))
    promptTokenIds = p.map((x) => ({ ids: tokenIds(x, 'prompt') as number[] }));
  else
    throw badParam(
      'prompt',
      'must be a string, a non-empty list of strings, a list of token ids, or a list of token-id lists',
    );
  const logprobs = topCount(body, 'logprobs');
  const echo = bool(body, 'echo');
  const stream = streamOf(body);
  // The prompt's log-probs take a forward pass before the first chunk could go: not worth a stream.
  if (echo && logprobs !== undefined && stream.stream)
    throw badParam('echo', 'with logprobs is not available with stream: true; ask it without streaming');
  const maxTokens = int(body, 'max_tokens', 0, 2 ** 31 - 1) ?? completionDefaultMaxTokens;
  if (maxTokens === 0) throw badParam('max_tokens', 'must be at least 1');
  return {
    kind: 'completion',
    model,
    request: {
      prompts,
      promptTokenIds,
      n,
      sampling: sampling(body, maxTokens),
      firstPromptIndex: 0,
      conversations: [],
    },
    ...stream,
    logprobs: logprobs !== undefined,
    topLogprobs: logprobs ?? 0,
    echo,
    returnTokenIds: bool(body, 'return_token_ids'),
    tokensAsIds: bool(body, 'return_tokens_as_token_ids'),
    promptLogprobs: promptLogprobsOf(body, stream.stream),
  };
}

/** A message's content: a string, or a list of text parts (joined). */
function contentOf(v: unknown, i: number): string {
  const param = `messages[${i}].content`;
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) {
    return v
      .map((part, j) => {
        if (!isObject(part) || part.type !== 'text' || typeof part.text !== 'string')
          throw badParam(`${param}[${j}]`, 'only text parts ({"type": "text", "text": ...}) are supported');
        return part.text;
      })
      .join('');
  }
  throw badParam(param, 'must be a string or a list of text parts');
}

export function parseChatBody(body: unknown): OpenAiJob {
  if (!isObject(body)) throw badParam('body', 'must be a JSON object');
  checkKnown(body, chatFields);
  const model = modelOf(body);
  const n = int(body, 'n', 1, 2 ** 31 - 1) ?? 1;
  checkNeutral(body, n);
  if (!Array.isArray(body.messages) || body.messages.length === 0)
    throw badParam('messages', 'must be a non-empty list of {"role", "content"}');
  const messages = body.messages.map((m, i) => {
    if (!isObject(m) || typeof m.role !== 'string' || m.role === '')
      throw badParam(`messages[${i}]`, 'must be an object with a "role" string and a "content"');
    for (const k of Object.keys(m))
      if (k !== 'role' && k !== 'content' && k !== 'name')
        throw badParam(`messages[${i}].${k}`, 'is not supported (text messages only); leave it out');
    return { role: m.role, content: contentOf(m.content, i) };
  });
  const logprobs = bool(body, 'logprobs');
  const top = topCount(body, 'top_logprobs');
  if (top !== undefined && !logprobs) throw badParam('top_logprobs', 'needs logprobs: true');
  if (given(body, 'max_tokens') && given(body, 'max_completion_tokens'))
    throw badParam('max_completion_tokens', 'give max_tokens or max_completion_tokens, not both');
  const stream = streamOf(body);
  const maxTokens =
    int(body, 'max_completion_tokens', 1, 2 ** 31 - 1) ?? int(body, 'max_tokens', 1, 2 ** 31 - 1);
  return {
    kind: 'chat',
    model,
    request: {
      prompts: [],
      promptTokenIds: [],
      n,
      sampling: sampling(body, maxTokens),
      firstPromptIndex: 0,
      conversations: [{ messages }],
    },
    ...stream,
    logprobs,
    topLogprobs: top ?? 0,
    echo: false,
    returnTokenIds: bool(body, 'return_token_ids'),
    tokensAsIds: bool(body, 'return_tokens_as_token_ids'),
    promptLogprobs: promptLogprobsOf(body, stream.stream),
  };
}
