/**
 * The dataset shapes of docs/ARCHITECTURE.md, section 3 (JSONL as TRL and RLHFlow), validated row by row.
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

/**
 * A preference pair: `{"prompt", "chosen", "rejected", "margin"?}`, each text or `_ids`; or TRL's conversational
 * form, the prompt a list of chat messages and each response one assistant message.
 */
export interface PairRecord {
  prompt: TextOrIds;
  chosen: TextOrIds;
  rejected: TextOrIds;
  /** How much better chosen is than rejected, when the labeller said (optional). */
  margin?: number;
}

/**
 * An SFT example: `{"prompt", "completion"}` (loss on the completion only), `{"text"}` (loss on all), or a
 * conversation `{"messages"}` (loss on its last, assistant message).
 */
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

/** Chat messages as a prompt: through `options.chat`, else their contents joined by newlines. */
function chatText(messages: readonly ChatMessage[], where: string, options: RecordOptions): TextOrIds {
  return options.chat ? options.chat(messages, where) : { text: messages.map((m) => m.content).join('\n') };
}

/** A prompt given as text, ids, or (TRL's conversational form) a list of chat messages. */
function promptField(row: Record<string, unknown>, where: string, options: RecordOptions): TextOrIds {
  if (!Array.isArray(row.prompt)) return textOrIdsField(row, 'prompt', where, options);
  return chatText(messagesField(row, 'prompt', where), where, options);
}

/** A response given as text, ids, or a list of one assistant message (TRL's conversational form). */
function responseField(
  row: Record<string, unknown>,
  field: string,
  where: string,
  options: RecordOptions,
): TextOrIds {
  if (!Array.isArray(row[field])) return textOrIdsField(row, field, where, options);
  const messages = messagesField(row, field, where);
  if (messages.length !== 1 || messages[0]?.role !== 'assistant')
    throw invalidInput(
      `${where}: field "${field}" as messages must be one {"role": "assistant", "content"} message`,
      `${where}:${field}`,
      'put the conversation so far in "prompt" and only the answer here',
    );
  return { text: (messages[0] as ChatMessage).content };
}

export function parsePairRecord(value: unknown, where: string, options: RecordOptions = {}): PairRecord {
  const row = asRow(value, where);
  const pair: PairRecord = {
    prompt: promptField(row, where, options),
    chosen: responseField(row, 'chosen', where, options),
    rejected: responseField(row, 'rejected', where, options),
  };
  const margin = optionalNumberField(row, 'margin', where);
  if (margin !== undefined) pair.margin = margin;
  return pair;
}

export function parseSftRecord(value: unknown, where: string, options: RecordOptions = {}): SftRecord {
  const row = asRow(value, where);
  if (has(row, 'messages')) {
    // A conversation: the loss on its last message, the assistant's answer to the ones before it.
    const messages = messagesField(row, 'messages', where);
    const last = messages.at(-1) as ChatMessage;
    if (messages.length < 2 || last.role !== 'assistant')
      throw invalidInput(
        `${where}: field "messages" must end with an assistant message after at least one other`,
        `${where}:messages`,
        'end each conversation with the answer to learn',
      );
    return {
      kind: 'prompt-completion',
      prompt: chatText(messages.slice(0, -1), where, options),
      completion: { text: last.content },
    };
  }
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
