/**
 * The dataset shapes of DESIGN.md section 3 (JSONL compatible with TRL and RLHFlow), validated row by row.
 * Text fields have `_ids` twins holding token ids that are used verbatim, for data tokenized elsewhere;
 * extra fields are ignored, as TRL ignores extra dataset columns.
 */
import { invalidInput } from '../engine-error.js';
import {
  asRow,
  type ChatMessage,
  messagesField,
  optionalNumberField,
  type RecordOptions,
  stringField,
  type TextOrIds,
  textOrIdsField,
} from './record-fields.js';

/** A prompt to generate from: `{"prompt"}`, `{"prompt_ids"}` or a chat `{"messages": [...]}`. */
export type PromptRecord =
  | { kind: 'prompt'; prompt: TextOrIds }
  | { kind: 'messages'; messages: ChatMessage[] };

/** A preference pair: `{"prompt", "chosen", "rejected", "margin"?}`, each text or `_ids`. */
export interface PairRecord {
  prompt: TextOrIds;
  chosen: TextOrIds;
  rejected: TextOrIds;
  /** How much better chosen is than rejected, when the labeller said (optional). */
  margin?: number;
}

/** An SFT example: `{"prompt", "completion"}` (loss on the completion only) or `{"text"}` (loss on all). */
export type SftRecord =
  | { kind: 'prompt-completion'; prompt: TextOrIds; completion: TextOrIds }
  | { kind: 'text'; text: string };

const has = (row: Record<string, unknown>, field: string) => row[field] !== undefined;

export function parsePromptRecord(value: unknown, where: string, options: RecordOptions = {}): PromptRecord {
  const row = asRow(value, where);
  if (has(row, 'messages')) {
    if (has(row, 'prompt') || has(row, 'prompt_ids')) {
      throw invalidInput(`${where}: give "prompt" or "messages", not both`, `${where}:messages`);
    }
    return { kind: 'messages', messages: messagesField(row, 'messages', where) };
  }
  return { kind: 'prompt', prompt: textOrIdsField(row, 'prompt', where, options) };
}

export function parsePairRecord(value: unknown, where: string, options: RecordOptions = {}): PairRecord {
  const row = asRow(value, where);
  const pair: PairRecord = {
    prompt: textOrIdsField(row, 'prompt', where, options),
    chosen: textOrIdsField(row, 'chosen', where, options),
    rejected: textOrIdsField(row, 'rejected', where, options),
  };
  const margin = optionalNumberField(row, 'margin', where);
  if (margin !== undefined) pair.margin = margin;
  return pair;
}

export function parseSftRecord(value: unknown, where: string, options: RecordOptions = {}): SftRecord {
  const row = asRow(value, where);
  const pieces = ['prompt', 'prompt_ids', 'completion', 'completion_ids'].some((f) => has(row, f));
  if (has(row, 'text') && !pieces) return { kind: 'text', text: stringField(row, 'text', where) };
  if (has(row, 'text')) {
    throw invalidInput(`${where}: give "text" or "prompt" + "completion", not both`, `${where}:text`);
  }
  return {
    kind: 'prompt-completion',
    prompt: textOrIdsField(row, 'prompt', where, options),
    completion: textOrIdsField(row, 'completion', where, options),
  };
}

/** Verbatim ids, or the text through `encode`. */
export function textOrIdsToIds(value: TextOrIds, encode: (text: string) => number[]): number[] {
  return 'ids' in value ? value.ids : encode(value.text);
}
