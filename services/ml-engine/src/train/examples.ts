/**
 * From dataset records to token rows, by the rule of tokenizer/prompt-ids.ts: a prompt given as text gets
 * the tokenizer's own special tokens (BOS first for ours and Llama's), ids are verbatim, a response given
 * as text ends with EOS. `targets` marks the tokens the loss counts: the completion (and its EOS) when a
 * prompt is given, every text token for plain text. Rows longer than the model's context are cut at the
 * end and counted as truncated.
 */
import type { PairRecord, SftRecord } from '../data/records.js';
import { invalidInput } from '../engine-error.js';
import { promptIds, responseIds } from '../tokenizer/prompt-ids.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export interface Example {
  ids: number[];
  /** targets[t]: token t is predicted by the loss (so position t - 1 carries its label). */
  targets: boolean[];
}

export interface PairExample {
  chosen: Example;
  rejected: Example;
}

export interface EncodeStats {
  truncated: number;
}

type Part = { text: string } | { ids: number[] };

/** The prompt's ids then the response's (tokenizer/prompt-ids.ts). */
function join(tok: Tokenizer, prompt: Part, response: Part, maxLen: number, stats: EncodeStats): Example {
  const head = promptIds(tok, prompt);
  const tail = responseIds(tok, response);
  const ids = [...head, ...tail];
  const targets = ids.map((_, i) => i >= head.length);
  if (ids.length > maxLen) {
    stats.truncated++;
    ids.length = maxLen;
    targets.length = maxLen;
  }
  return { ids, targets };
}

export function encodeSft(
  tok: Tokenizer,
  r: SftRecord,
  maxLen: number,
  stats: EncodeStats = { truncated: 0 },
): Example {
  if (r.kind === 'text') return join(tok, { text: '' }, { text: r.text }, maxLen, stats);
  return join(tok, r.prompt, r.completion, maxLen, stats);
}

export function encodePair(
  tok: Tokenizer,
  r: PairRecord,
  maxLen: number,
  stats: EncodeStats = { truncated: 0 },
): PairExample {
  return {
    chosen: join(tok, r.prompt, r.chosen, maxLen, stats),
    rejected: join(tok, r.prompt, r.rejected, maxLen, stats),
  };
}

export function checkIds(examples: readonly Example[], vocabSize: number, source: string): void {
  for (const [i, e] of examples.entries()) {
    for (const id of e.ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw invalidInput(
          `${source}: example ${i + 1} has token id ${id}, outside the vocabulary (size ${vocabSize})`,
          `${source}:${i + 1}`,
        );
      }
    }
  }
}
