/**
 * Preference pairs in TRL's standard (text) preference format, one JSON object a line:
 *   {"prompt": "...", "chosen": "...", "rejected": "..."}
 * Text, not token ids, because TRL's DPOTrainer only takes text (or conversations): it tokenizes
 * `prompt` and `prompt + chosen + eos_token` with the checkpoint's tokenizer and trains on the ids after
 * their common prefix. The built-in trainer encodes the same record as promptIds(prompt) then the
 * response's ids then EOS (tokenizer/prompt-ids.ts). The two agree when the prompt/response boundary is a
 * token boundary and a response's ids decode to text that encodes back to them; `trlAgreement` counts the
 * pairs where TRL will see other ids than the built-in trainer, so a caller can say how many.
 *
 * Ids in a record are turned into text the way they read back: a prompt through promptText (the
 * tokenizer's own leading special tokens left out, since TRL's tokenizer call puts them back), a response
 * decoded without its closing EOS (TRL appends eos_token itself). A response that stopped at the length
 * limit has no EOS; TRL still appends one, so that pair disagrees and is counted.
 */
import { encodePair, type PairRecord, promptText, type Tokenizer, textPromptIds } from '@rlhf/ml-engine';

export interface TrlPreferenceRow {
  prompt: string;
  chosen: string;
  rejected: string;
}

function responseText(tok: Tokenizer, r: PairRecord['chosen']): string {
  if ('text' in r) return r.text;
  const ids = r.ids.at(-1) === tok.eosId ? r.ids.slice(0, -1) : r.ids;
  return tok.decode(ids);
}

export function trlPreferenceRow(tok: Tokenizer, r: PairRecord): TrlPreferenceRow {
  return {
    prompt: 'text' in r.prompt ? r.prompt.text : promptText(tok, r.prompt.ids),
    chosen: responseText(tok, r.chosen),
    rejected: responseText(tok, r.rejected),
  };
}

/** The JSONL file TRL loads as the `train` split (write it as <dir>/train.jsonl). */
export function trlPreferenceJsonl(rows: readonly TrlPreferenceRow[]): string {
  return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** The prompt and completion ids TRL 1.16's DPOTrainer makes of a text row (its tokenize_fn). */
export function trlIds(
  tok: Tokenizer,
  row: TrlPreferenceRow,
): { prompt: number[]; chosen: number[]; rejected: number[] } {
  const eos = tok.idToToken(tok.eosId);
  const withEos = (s: string) => (s.endsWith(eos) ? s : s + eos);
  const prompt = textPromptIds(tok, row.prompt);
  const chosen = textPromptIds(tok, row.prompt + withEos(row.chosen));
  const rejected = textPromptIds(tok, row.prompt + withEos(row.rejected));
  const cut = Math.min(commonPrefix(prompt, chosen), commonPrefix(prompt, rejected));
  return { prompt: prompt.slice(0, cut), chosen: chosen.slice(cut), rejected: rejected.slice(cut) };
}

export interface TrlAgreement {
  pairs: number;
  /** Pairs whose TRL ids (prompt, chosen or rejected) differ from the built-in trainer's. */
  differing: number;
  /** The first differing pair's index, for a message. */
  firstDiffering?: number;
}

const same = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Compares, pair by pair, the ids TRL will train on with those the built-in trainer trains on. */
export function trlAgreement(tok: Tokenizer, records: readonly PairRecord[]): TrlAgreement {
  let differing = 0;
  let firstDiffering: number | undefined;
  for (const [i, r] of records.entries()) {
    const ours = encodePair(tok, r, Number.MAX_SAFE_INTEGER);
    const theirs = trlIds(tok, trlPreferenceRow(tok, r));
    const head = ours.chosen.targets.indexOf(true);
    const ok =
      same(ours.chosen.ids.slice(0, head), theirs.prompt) &&
      same(ours.chosen.ids.slice(head), theirs.chosen) &&
      same(ours.rejected.ids.slice(head), theirs.rejected);
    if (!ok) {
      differing++;
      firstDiffering ??= i;
    }
  }
  return { pairs: records.length, differing, ...(firstDiffering !== undefined ? { firstDiffering } : {}) };
}
