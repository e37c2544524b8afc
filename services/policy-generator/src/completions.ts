/**
 * A sampled row turned into what callers get (common.proto Completion): the text without a final EOS and
 * cut before a matched stop string, every generated token id (the EOS or stop token included), the model's
 * log-prob of each, and why it ended.
 */
import type { FinishReason as EngineFinishReason, Sample, Tokenizer, TokenLogprob } from '@rlhf/ml-engine';
import { type Completion, FinishReason } from '@rlhf/proto';

export interface GeneratedCompletion {
  text: string;
  tokenIds: number[];
  logprobs: number[];
  /** When asked: each token's most likely alternatives with their log-probs (the OpenAI API's top logprobs). */
  topLogprobs?: TokenLogprob[][];
  finishReason: EngineFinishReason;
}

export const finishReasonOf: Record<EngineFinishReason, FinishReason> = {
  eos: FinishReason.FINISH_REASON_EOS,
  length: FinishReason.FINISH_REASON_LENGTH,
  stop: FinishReason.FINISH_REASON_STOP,
};

/** Text of generated ids; ids the tokenizer does not know (a model whose embedding is larger) are left out. */
export function decodeIds(tok: Tokenizer, ids: readonly number[]): string {
  return tok.decode(ids.every((id) => id < tok.vocabSize) ? ids : ids.filter((id) => id < tok.vocabSize));
}

/** Index of the earliest stop string in `text`, or -1. */
export function firstStop(text: string, stops: readonly string[]): number {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** The engine's stopWhen hook for stop strings: true once the decoded completion contains one. */
export function stopStringsHook(
  tok: Tokenizer,
  stops: readonly string[],
): ((ids: readonly number[]) => boolean) | undefined {
  if (stops.length === 0) return undefined;
  return (ids) => firstStop(decodeIds(tok, ids), stops) >= 0;
}

export function toCompletion(tok: Tokenizer, sample: Sample, stops: readonly string[]): GeneratedCompletion {
  const ids = sample.tokenIds;
  // A sample that ended on EOS (or another end token of the model) ends with it: the text leaves it out.
  const body = sample.finishReason === 'eos' ? ids.slice(0, -1) : ids;
  let text = decodeIds(tok, body);
  const cut = firstStop(text, stops);
  if (cut >= 0) text = text.slice(0, cut);
  return {
    text,
    tokenIds: [...ids],
    logprobs: [...sample.logprobs],
    ...(sample.topLogprobs ? { topLogprobs: sample.topLogprobs.slice(0, ids.length) } : {}),
    finishReason: sample.finishReason,
  };
}

export function completionMessage(c: GeneratedCompletion): Completion {
  return {
    text: c.text,
    tokenIds: c.tokenIds,
    logprobs: c.logprobs,
    finishReason: finishReasonOf[c.finishReason],
  };
}
