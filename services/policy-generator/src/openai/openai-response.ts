/**
 * Response bodies and stream chunks of the OpenAI-compatible API, in OpenAI's shapes plus vLLM's RLHF
 * fields: with `return_token_ids`, the prompt's token ids (BOS first, as the model saw them) and each
 * choice's sampled ids (a final EOS or stop token included, as in the gRPC Completion); with logprobs, each
 * sampled token's log-prob under the model's own distribution (log-softmax before temperature, top-k and
 * top-p, as the gRPC Completion's); with `prompt_logprobs`, the same for each prompt token.
 */
import type { Tokenizer } from '@rlhf/ml-engine';
import type { GeneratedCompletion } from '../completions.js';
import type { GeneratedBatch } from '../generate-rpc.js';
import type { OpenAiJob } from './openai-request.js';

export interface ResponseHead {
  id: string;
  created: number;
  model: string;
}

const finishReason = (c: GeneratedCompletion): 'stop' | 'length' =>
  c.finishReason === 'length' ? 'length' : 'stop';

/** A token as logprobs show it: its text, or `token_id:<id>` when asked (or when the tokenizer lacks it). */
function tokenText(tok: Tokenizer, id: number, asIds: boolean): string {
  return asIds || id >= tok.vocabSize ? `token_id:${id}` : tok.decode([id]);
}

function completionLogprobs(tok: Tokenizer, c: GeneratedCompletion, asIds: boolean, offset: number) {
  const tokens = c.tokenIds.map((id) => tokenText(tok, id, asIds));
  const textOffset: number[] = [];
  let at = offset;
  for (const t of tokens) {
    textOffset.push(at);
    at += t.length;
  }
  return {
    tokens,
    token_logprobs: c.logprobs,
    top_logprobs: tokens.map((t, i) => ({ [t]: c.logprobs[i] as number })),
    text_offset: textOffset,
  };
}

function chatLogprobs(tok: Tokenizer, c: GeneratedCompletion, asIds: boolean) {
  return {
    content: c.tokenIds.map((id, i) => {
      const token = tokenText(tok, id, asIds);
      return {
        token,
        logprob: c.logprobs[i] as number,
        bytes: [...Buffer.from(token, 'utf8')],
        top_logprobs: [],
      };
    }),
  };
}

function usage(batch: GeneratedBatch) {
  const prompt = batch.promptIds.reduce((t, ids) => t + ids.length, 0);
  const completion = batch.completions.flat().reduce((t, c) => t + c.tokenIds.length, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/**
 * vLLM's prompt_logprobs: null for the first token (BOS), then `{"<id>": {logprob, rank, decoded_token}}` for
 * each token; the rank among the vocabulary is not computed (null).
 */
export function promptLogprobsField(
  tok: Tokenizer,
  ids: readonly number[],
  lps: readonly number[],
  asIds: boolean,
) {
  return ids.map((id, t) =>
    t === 0
      ? null
      : {
          [String(id)]: {
            logprob: lps[t - 1] as number,
            rank: null,
            decoded_token: tokenText(tok, id, asIds),
          },
        },
  );
}

/** One choice of /v1/completions (whole, or as the one chunk a streamed choice is sent in). */
export function completionChoice(
  tok: Tokenizer,
  job: OpenAiJob,
  index: number,
  prompt: { text: string; ids: number[]; logprobs?: readonly number[] },
  c: GeneratedCompletion,
) {
  const prefix = job.echo ? prompt.text : '';
  return {
    index,
    text: prefix + c.text,
    logprobs: job.logprobs ? completionLogprobs(tok, c, job.tokensAsIds, prefix.length) : null,
    finish_reason: finishReason(c),
    ...(job.returnTokenIds ? { prompt_token_ids: prompt.ids, token_ids: c.tokenIds } : {}),
    ...(prompt.logprobs
      ? { prompt_logprobs: promptLogprobsField(tok, prompt.ids, prompt.logprobs, job.tokensAsIds) }
      : {}),
  };
}

/** One choice of /v1/chat/completions; `delta` for a stream chunk, `message` otherwise. */
export function chatChoice(
  tok: Tokenizer,
  job: OpenAiJob,
  index: number,
  c: GeneratedCompletion,
  delta: boolean,
) {
  const message = { role: 'assistant', content: c.text };
  return {
    index,
    ...(delta ? { delta: message } : { message }),
    logprobs: job.logprobs ? chatLogprobs(tok, c, job.tokensAsIds) : null,
    finish_reason: finishReason(c),
    ...(job.returnTokenIds ? { token_ids: c.tokenIds } : {}),
  };
}

/** Choice index of sample `s` of prompt `p`: prompts in order, n choices each (OpenAI's numbering). */
export const choiceIndex = (job: OpenAiJob, p: number, s: number): number => p * (job.request.n ?? 1) + s;

export function completionBody(
  tok: Tokenizer,
  job: OpenAiJob,
  head: ResponseHead,
  batch: GeneratedBatch,
  promptLps?: readonly number[][],
) {
  return {
    ...head,
    object: 'text_completion',
    choices: batch.completions.flatMap((cs, p) =>
      cs.map((c, s) =>
        completionChoice(
          tok,
          job,
          choiceIndex(job, p, s),
          {
            text: batch.prompts[p] ?? '',
            ids: batch.promptIds[p] ?? [],
            ...(promptLps ? { logprobs: promptLps[p] ?? [] } : {}),
          },
          c,
        ),
      ),
    ),
    usage: usage(batch),
  };
}

export function chatBody(
  tok: Tokenizer,
  job: OpenAiJob,
  head: ResponseHead,
  batch: GeneratedBatch,
  promptLps?: readonly number[][],
) {
  return {
    ...head,
    object: 'chat.completion',
    choices: (batch.completions[0] ?? []).map((c, s) => chatChoice(tok, job, s, c, false)),
    usage: usage(batch),
    ...(job.returnTokenIds ? { prompt_token_ids: batch.promptIds[0] ?? [] } : {}),
    ...(promptLps
      ? {
          prompt_logprobs: promptLogprobsField(
            tok,
            batch.promptIds[0] ?? [],
            promptLps[0] ?? [],
            job.tokensAsIds,
          ),
        }
      : {}),
  };
}

/** The stream's closing chunk with the usage (stream_options.include_usage). */
export function usageChunk(job: OpenAiJob, head: ResponseHead, batch: GeneratedBatch) {
  return {
    ...head,
    object: job.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    choices: [],
    usage: usage(batch),
  };
}
