/**
 * Token-by-token streaming of one choice: the tokens a row has taken since the last chunk become a chunk
 * (their ids, log-probs and alternatives, and the text they add). Text is held back while it ends in an
 * incomplete UTF-8 sequence (the decoder's U+FFFD) or in what could be the start of a stop string, so the
 * streamed text, joined, is exactly the non-streamed choice's: the final chunk, sent with the finished
 * completion, carries what was held back (minus a matched stop string or a final EOS, as the whole text
 * leaves them out).
 */
import type { Sample, Tokenizer } from '@rlhf/ml-engine';
import { decodeIds, type GeneratedCompletion } from '../completions.js';
import type { OpenAiJob } from './openai-request.js';
import {
  type ChoicePrompt,
  chatLogprobs,
  completionLogprobs,
  type ResponseHead,
  sampledRun,
  type TokenRun,
} from './openai-response.js';

/** What a chunk of one choice adds. */
export interface ChoiceDelta {
  text: string;
  run: TokenRun;
  /** Characters of this choice's text sent before this chunk (the echoed prompt included). */
  textOffset: number;
  /** The choice's first chunk (it carries the role, the echoed prompt and the prompt ids). */
  first: boolean;
}

/** The longest suffix of `text` that is a proper prefix of one of `stops`. */
function stopPrefixAt(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const s of stops)
    for (let len = Math.min(s.length - 1, text.length); len > hold; len--)
      if (text.endsWith(s.slice(0, len))) {
        hold = len;
        break;
      }
  return hold;
}

export class ChoiceStream {
  private sentTokens = 0;
  private sentText = '';
  private started = false;

  constructor(
    private readonly tok: Tokenizer,
    private readonly stops: readonly string[],
    /** Text before the first token's (the echoed prompt). */
    private readonly prefix = '',
  ) {}

  /** The chunk for the tokens `so` took since the last one, or null when it took none new. */
  tokens(so: Sample): ChoiceDelta | null {
    if (so.tokenIds.length <= this.sentTokens) return null;
    const text = decodeIds(this.tok, so.tokenIds);
    let end = text.length - stopPrefixAt(text, this.stops);
    while (end > 0 && text[end - 1] === '\uFFFD') end--;
    const visible = text.slice(0, end);
    // A decoder that rewrites earlier text as tokens arrive (rare): the rest waits for the final chunk.
    const add = visible.startsWith(this.sentText) ? visible.slice(this.sentText.length) : '';
    return this.take(so.tokenIds.length, add, {
      ids: so.tokenIds.slice(this.sentTokens),
      logprobs: so.logprobs.slice(this.sentTokens),
      ...(so.topLogprobs ? { top: so.topLogprobs.slice(this.sentTokens) } : {}),
    });
  }

  /** The last chunk: the completion's tokens and text not sent yet. */
  finish(c: GeneratedCompletion): ChoiceDelta {
    const all = sampledRun(c);
    const add = c.text.startsWith(this.sentText) ? c.text.slice(this.sentText.length) : '';
    return this.take(c.tokenIds.length, add, {
      ids: all.ids.slice(this.sentTokens),
      logprobs: all.logprobs.slice(this.sentTokens),
      ...(all.top ? { top: all.top.slice(this.sentTokens) } : {}),
    });
  }

  private take(tokens: number, add: string, run: TokenRun): ChoiceDelta {
    const first = !this.started;
    const before = this.prefix.length + this.sentText.length;
    this.started = true;
    this.sentTokens = tokens;
    this.sentText += add;
    return { text: first ? this.prefix + add : add, run, textOffset: first ? 0 : before, first };
  }
}

/** A /v1/completions stream chunk for one choice. */
export function completionChunk(
  tok: Tokenizer,
  job: OpenAiJob,
  head: ResponseHead,
  index: number,
  prompt: ChoicePrompt,
  d: ChoiceDelta,
  finish: string | null,
) {
  const echoed = d.first && job.echo ? prompt.text.length : 0;
  return {
    ...head,
    object: 'text_completion',
    choices: [
      {
        index,
        text: d.text,
        logprobs: job.logprobs
          ? completionLogprobs(tok, d.run, job.tokensAsIds, d.textOffset + echoed)
          : null,
        finish_reason: finish,
        ...(job.returnTokenIds
          ? { token_ids: d.run.ids, ...(d.first ? { prompt_token_ids: prompt.ids } : {}) }
          : {}),
      },
    ],
  };
}

/** A /v1/chat/completions stream chunk for one choice; the response's first chunk names the prompt ids. */
export function chatChunk(
  tok: Tokenizer,
  job: OpenAiJob,
  head: ResponseHead,
  index: number,
  promptIds: readonly number[] | null,
  d: ChoiceDelta,
  finish: string | null,
) {
  return {
    ...head,
    object: 'chat.completion.chunk',
    choices: [
      {
        index,
        delta: d.first ? { role: 'assistant', content: d.text } : { content: d.text },
        logprobs: job.logprobs ? chatLogprobs(tok, d.run, job.tokensAsIds) : null,
        finish_reason: finish,
        ...(job.returnTokenIds ? { token_ids: d.run.ids } : {}),
      },
    ],
    ...(promptIds ? { prompt_token_ids: promptIds } : {}),
  };
}
