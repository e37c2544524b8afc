/**
 * Names the dataset shape a row has (TRL's types and formats, UltraFeedback, RLHFlow's judged generations),
 * so that a row a command cannot use is refused in one line saying what it looks like and what the command
 * needs instead, rather than with the first missing field.
 */
import { type EngineError, invalidInput } from '../engine-error.js';
import type { Row } from './record-fields.js';

/** What a record is used for; each has its own required fields. */
export type RecordPurpose = 'prompt' | 'pair' | 'sft';

/** The fields a row needs for each purpose, as the fix of a refusal. */
export const NEEDS: Record<RecordPurpose, string> = {
  prompt:
    'a prompt row needs "prompt" (text or a list of chat messages), "prompt_ids" (token ids) or "messages" (a chat)',
  pair: 'a preference row needs "chosen" and "rejected" (text, "_ids" or chat messages), with "prompt" unless chosen and rejected share it as a prefix',
  sft: 'an SFT row needs "text", "messages" (a chat ending with the assistant), or "prompt" + "completion" (text, "_ids" or chat messages)',
};

const isChat = (v: unknown) =>
  Array.isArray(v) && v.length > 0 && v.every((m) => typeof m === 'object' && m !== null && 'role' in m);

const present = (row: Row, field: string) => row[field] !== undefined && row[field] !== null;

/** A short name for the shape of `row`, e.g. `TRL preference (implicit prompt, conversational)`. */
export function describeRowShape(row: Row): string {
  const conv = (...fields: string[]) => (fields.some((f) => isChat(row[f])) ? 'conversational' : 'standard');
  if (present(row, 'responses') && present(row, 'rewards')) return 'RLHFlow judged generations';
  if (present(row, 'responses')) return 'generations without rewards';
  if (present(row, 'chosen') && present(row, 'rejected')) {
    const hasScores = present(row, 'score_chosen') || present(row, 'score_rejected');
    if (hasScores) return 'UltraFeedback-style preference';
    const prompt = present(row, 'prompt') || present(row, 'prompt_ids') ? 'explicit' : 'implicit';
    return `TRL preference (${prompt} prompt, ${conv('prompt', 'chosen', 'rejected')})`;
  }
  if (present(row, 'completion') || present(row, 'completion_ids')) {
    if (present(row, 'label')) return 'TRL unpaired preference';
    return `TRL prompt-completion (${conv('prompt', 'completion')})`;
  }
  if (present(row, 'messages')) return 'TRL language modeling (conversational)';
  if (present(row, 'text')) return 'TRL language modeling (standard)';
  if (present(row, 'prompt') || present(row, 'prompt_ids')) return `TRL prompt-only (${conv('prompt')})`;
  const fields = Object.keys(row);
  if (fields.length === 0) return 'an empty object';
  const shown = fields.slice(0, 6).map((f) => `"${f}"`);
  return `unknown (fields ${shown.join(', ')}${fields.length > 6 ? ', ...' : ''})`;
}

/**
 * The one-line refusal of a row whose shape does not fit `purpose`: the error's field names the row and the
 * field it lacks (`<file>:<line>:<field>`), the message its shape, the fix what the command needs.
 */
export function refuseShape(
  row: Row,
  where: string,
  purpose: RecordPurpose,
  field: string,
  why: string,
): EngineError {
  // The row is named once, in the field, which every caller prints before the message.
  return invalidInput(`${describeRowShape(row)} row ${why}`, `${where}:${field}`, NEEDS[purpose]);
}
