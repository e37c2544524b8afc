/**
 * From dataset records to token rows. Every row starts with BOS and a response ends with EOS; `targets`
 * marks the tokens the loss counts: the completion (and its EOS) when a prompt is given, every token after
 * BOS for plain text. Rows longer than the model's context are cut at the end and counted as truncated.
 */
import type { PairRecord, SftRecord } from '../data/records.js';
import { textOrIdsToIds } from '../data/records.js';
import { invalidInput } from '../engine-error.js';
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

function join(
  bos: number,
  eos: number,
  prompt: number[],
  response: number[],
  maxLen: number,
  stats: EncodeStats,
): Example {
  const ids = [bos, ...prompt, ...response, eos];
  const targets = ids.map((_, i) => i > prompt.length);
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
  const enc = (t: string): number[] => tok.encode(t);
  if (r.kind === 'text') return join(tok.bosId, tok.eosId, [], enc(r.text), maxLen, stats);
  return join(
    tok.bosId,
    tok.eosId,
    textOrIdsToIds(r.prompt, enc),
    textOrIdsToIds(r.completion, enc),
    maxLen,
    stats,
  );
}

export function encodePair(
  tok: Tokenizer,
  r: PairRecord,
  maxLen: number,
  stats: EncodeStats = { truncated: 0 },
): PairExample {
  const enc = (t: string): number[] => tok.encode(t);
  const prompt = textOrIdsToIds(r.prompt, enc);
  return {
    chosen: join(tok.bosId, tok.eosId, prompt, textOrIdsToIds(r.chosen, enc), maxLen, stats),
    rejected: join(tok.bosId, tok.eosId, prompt, textOrIdsToIds(r.rejected, enc), maxLen, stats),
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
