/**
 * Response bodies and stream chunks of the OpenAI-compatible API, in OpenAI's shapes plus vLLM's RLHF
 * fields: with `return_token_ids`, the prompt's token ids (BOS first, as the model saw them) and each
 * choice's sampled ids (a final EOS or stop token included, as in the gRPC Completion); with logprobs, each
 * sampled token's log-prob under the model's own distribution (log-softmax before temperature, top-k and
 * top-p, as the gRPC Completion's: vLLM's default "raw" log-probs) and its k most likely alternatives under
 * the same distribution; with `prompt_logprobs`, the same for each prompt token.
 */
import type { Tokenizer, TokenLogprob } from '@rlhf/ml-engine';
import type { GeneratedCompletion } from '../completions.js';
import type { GeneratedBatch } from '../generate-rpc.js';
import type { OpenAiJob } from './openai-request.js';
import type { PromptTokenLogprob } from './prompt-logprobs.js';

export interface ResponseHead {
  id: string;
  created: number;
  model: string;
}

/** Tokens with their log-probs (null: the first prompt token, which has none) and alternatives. */
export interface TokenRun {
  ids: readonly number[];
  logprobs: ReadonlyArray<number | null>;
  top?: ReadonlyArray<readonly TokenLogprob[] | null>;
}

const finishReason = (c: GeneratedCompletion): 'stop' | 'length' =>
  c.finishReason === 'length' ? 'length' : 'stop';

/** A token as logprobs show it: its text, or `token_id:<id>` when asked (or when the tokenizer lacks it). */
function tokenText(tok: Tokenizer, id: number, asIds: boolean): string {
  return asIds || id >= tok.vocabSize ? `token_id:${id}` : tok.decode([id]);
}

/** JSON has no -Infinity: an impossible token's log-prob is clamped, as vLLM clamps it. */
const finite = (lp: number): number => Math.max(lp, -9999);

/** The sampled part of a completion as a TokenRun. */
export const sampledRun = (c: GeneratedCompletion): TokenRun => ({
  ids: c.tokenIds,
  logprobs: c.logprobs,
  ...(c.topLogprobs ? { top: c.topLogprobs } : {}),
});

/** The prompt as a TokenRun: the first token without a log-prob, then each with its alternatives. */
const promptRun = (ids: readonly number[], lps: readonly PromptTokenLogprob[]): TokenRun => ({
  ids,
  logprobs: ids.map((_, t) => (t === 0 ? null : (lps[t - 1]?.logprob ?? null))),
  top: ids.map((_, t) => (t === 0 ? null : (lps[t - 1]?.top ?? []))),
});

const concatRuns = (a: TokenRun, b: TokenRun): TokenRun => ({
  ids: [...a.ids, ...b.ids],
  logprobs: [...a.logprobs, ...b.logprobs],
  top: [...(a.top ?? a.ids.map(() => [])), ...(b.top ?? b.ids.map(() => []))],
});

/**
 * /v1/completions logprobs: `tokens`, `token_logprobs`, `top_logprobs` (per token a dict of its k
 * alternatives and the sampled token itself, so k or k + 1 entries, as vLLM gives) and `text_offset` (each
 * token's start in the choice's text, from `offset`).
 */
export function completionLogprobs(tok: Tokenizer, run: TokenRun, asIds: boolean, offset: number) {
  const tokens = run.ids.map((id) => tokenText(tok, id, asIds));
  const textOffset: number[] = [];
  let at = offset;
  for (const t of tokens) {
    textOffset.push(at);
    at += t.length;
  }
  return {
    tokens,
    token_logprobs: run.logprobs.map((lp) => (lp === null ? null : finite(lp))),
    top_logprobs: tokens.map((t, i) => {
      const lp = run.logprobs[i];
      if (lp === null || lp === undefined) return null;
      const dict: Record<string, number> = {};
      for (const alt of run.top?.[i] ?? []) dict[tokenText(tok, alt.token, asIds)] ??= finite(alt.logprob);
      dict[t] ??= finite(lp);
      return dict;
    }),
    text_offset: textOffset,
  };
}

const bytesOf = (token: string): number[] => [...Buffer.from(token, 'utf8')];

/** /v1/chat/completions logprobs: `content[i]` with token, logprob, bytes and its `top_logprobs` list. */
export function chatLogprobs(tok: Tokenizer, run: TokenRun, asIds: boolean) {
  return {
    content: run.ids.map((id, i) => {
      const token = tokenText(tok, id, asIds);
      return {
        token,
        logprob: finite(run.logprobs[i] as number),
        bytes: bytesOf(token),
        top_logprobs: (run.top?.[i] ?? []).map((alt) => {
          const text = tokenText(tok, alt.token, asIds);
          return { token: text, logprob: finite(alt.logprob), bytes: bytesOf(text) };
        }),
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
 * vLLM's prompt_logprobs: null for the first token (BOS), then for each token a dict keyed by token id of
 * `{logprob, rank, decoded_token}`: the token itself (its rank in the vocabulary, 1 the most likely) and its
 * position's k most likely tokens (ranks 1..k).
 */
function promptLogprobsField(
  tok: Tokenizer,
  ids: readonly number[],
  lps: readonly PromptTokenLogprob[],
  asIds: boolean,
) {
  return ids.map((id, t) => {
    const e = lps[t - 1];
    if (t === 0 || e === undefined) return null;
    const dict: Record<string, { logprob: number; rank: number; decoded_token: string }> = {
      [String(id)]: { logprob: finite(e.logprob), rank: e.rank, decoded_token: tokenText(tok, id, asIds) },
    };
    e.top.forEach((alt, r) => {
      dict[String(alt.token)] ??= {
        logprob: finite(alt.logprob),
        rank: r + 1,
        decoded_token: tokenText(tok, alt.token, asIds),
      };
    });
    return dict;
  });
}

/** A prompt as a choice needs it: text, ids, and its log-probs when asked (prompt_logprobs or echo). */
export interface ChoicePrompt {
  text: string;
  ids: number[];
  logprobs?: readonly PromptTokenLogprob[];
}

/** One choice of /v1/completions. */
function completionChoice(
  tok: Tokenizer,
  job: OpenAiJob,
  index: number,
  prompt: ChoicePrompt,
  c: GeneratedCompletion,
) {
  const prefix = job.echo ? prompt.text : '';
  // Echo with logprobs: the prompt's tokens first (OpenAI's shape), the first of them without a log-prob.
  const run =
    job.echo && prompt.logprobs
      ? concatRuns(promptRun(prompt.ids, prompt.logprobs), sampledRun(c))
      : sampledRun(c);
  return {
    index,
    text: prefix + c.text,
    logprobs: job.logprobs
      ? completionLogprobs(tok, run, job.tokensAsIds, job.echo && prompt.logprobs ? 0 : prefix.length)
      : null,
    finish_reason: finishReason(c),
    ...(job.returnTokenIds ? { prompt_token_ids: prompt.ids, token_ids: c.tokenIds } : {}),
    ...(prompt.logprobs && job.promptLogprobs !== null
      ? { prompt_logprobs: promptLogprobsField(tok, prompt.ids, prompt.logprobs, job.tokensAsIds) }
      : {}),
  };
}

/** One choice of /v1/chat/completions. */
function chatChoice(tok: Tokenizer, job: OpenAiJob, index: number, c: GeneratedCompletion) {
  return {
    index,
    message: { role: 'assistant', content: c.text },
    logprobs: job.logprobs ? chatLogprobs(tok, sampledRun(c), job.tokensAsIds) : null,
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
  promptLps?: readonly PromptTokenLogprob[][],
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
  promptLps?: readonly PromptTokenLogprob[][],
) {
  return {
    ...head,
    object: 'chat.completion',
    choices: (batch.completions[0] ?? []).map((c, s) => chatChoice(tok, job, s, c)),
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
