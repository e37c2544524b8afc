/**
 * The dataset shapes of docs/DATA.md (TRL's standard and conversational types, UltraFeedback), validated row
 * by row; rows come from JSONL or Parquet through dataset-file.ts.
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
import { refuseShape } from './record-shape.js';

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

const sameMessage = (a: ChatMessage, b: ChatMessage) => a.role === b.role && a.content === b.content;

export function parsePromptRecord(value: unknown, where: string, options: RecordOptions = {}): PromptRecord {
  const row = asRow(value, where);
  if (has(row, 'messages')) {
    if (has(row, 'prompt') || has(row, 'prompt_ids')) {
      throw invalidInput(`${where}: give "prompt" or "messages", not both`, `${where}:messages`);
    }
    return { kind: 'messages', messages: messagesField(row, 'messages', where) };
  }
  // TRL's conversational prompt-only form: the prompt is a list of chat messages.
  if (Array.isArray(row.prompt)) return { kind: 'messages', messages: messagesField(row, 'prompt', where) };
  if (!has(row, 'prompt') && !has(row, 'prompt_ids'))
    throw refuseShape(row, where, 'prompt', 'prompt', 'has no prompt');
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

/** The answer of a conversational response: exactly one assistant message. */
function assistantAnswer(messages: readonly ChatMessage[], field: string, where: string): TextOrIds {
  if (messages.length !== 1 || messages[0]?.role !== 'assistant')
    throw invalidInput(
      `${where}: field "${field}" as messages must be one {"role": "assistant", "content"} message after the prompt`,
      `${where}:${field}`,
      'put the conversation so far in "prompt" (or as the shared leading messages) and only the answer here',
    );
  return { text: (messages[0] as ChatMessage).content };
}

/** A response given as text, ids, or a list of one assistant message (TRL's conversational form). */
function responseField(
  row: Record<string, unknown>,
  field: string,
  where: string,
  options: RecordOptions,
): TextOrIds {
  if (!Array.isArray(row[field])) return textOrIdsField(row, field, where, options);
  return assistantAnswer(messagesField(row, field, where), field, where);
}

/**
 * TRL's implicit prompt for text: the longest common prefix of chosen and rejected, less a space it ends on
 * (which goes with the responses, as TRL's `extract_prompt` splits "The sky is| blue.").
 */
function splitSharedText(chosen: string, rejected: string): number {
  let i = 0;
  const n = Math.min(chosen.length, rejected.length);
  while (i < n && chosen[i] === rejected[i]) i++;
  if (i === n) return -1;
  return i > 0 && chosen[i - 1] === ' ' ? i - 1 : i;
}

/**
 * Chosen and rejected as whole conversations (TRL's conversational implicit prompt, UltraFeedback): the prompt
 * is their shared leading messages, each response the one assistant message after them. An explicit
 * "prompt" beside them must say the same: the same messages, or the text of the last user message among
 * them (UltraFeedback's string prompt).
 */
function conversationPair(
  row: Record<string, unknown>,
  where: string,
  options: RecordOptions,
): PairRecord | undefined {
  const chosen = messagesField(row, 'chosen', where);
  const rejected = messagesField(row, 'rejected', where);
  let shared = 0;
  const limit = Math.min(chosen.length, rejected.length) - 1;
  while (shared < limit && sameMessage(chosen[shared] as ChatMessage, rejected[shared] as ChatMessage))
    shared++;
  if (shared === 0) {
    // Answers only, after an explicit prompt (checked there to be one assistant message each).
    if (has(row, 'prompt') || (chosen.length === 1 && rejected.length === 1)) return undefined;
    throw refuseShape(
      row,
      where,
      'pair',
      'prompt',
      'has chosen and rejected conversations that share no leading messages, so there is no prompt to train on',
    );
  }
  const prompt = chosen.slice(0, shared);
  if (has(row, 'prompt')) {
    const lastUser = prompt.filter((m) => m.role === 'user').at(-1)?.content;
    const given = row.prompt;
    const agrees = Array.isArray(given)
      ? messagesField(row, 'prompt', where).length === prompt.length &&
        messagesField(row, 'prompt', where).every((m, i) => sameMessage(m, prompt[i] as ChatMessage))
      : given === lastUser;
    if (!agrees)
      throw invalidInput(
        `${where}: field "prompt" differs from the leading messages that "chosen" and "rejected" share`,
        `${where}:prompt`,
        'drop "prompt" (the shared messages are the prompt) or give only the answers in chosen/rejected',
      );
  }
  return {
    prompt: chatText(prompt, where, options),
    chosen: assistantAnswer(chosen.slice(shared), 'chosen', where),
    rejected: assistantAnswer(rejected.slice(shared), 'rejected', where),
  };
}

function pairOf(row: Record<string, unknown>, where: string, options: RecordOptions): PairRecord {
  const present = (f: string) => has(row, f) || has(row, `${f}_ids`);
  if (!present('chosen') || !present('rejected')) {
    const missing = present('chosen') ? 'rejected' : 'chosen';
    throw refuseShape(row, where, 'pair', missing, `has no "${missing}"`);
  }
  const chat = [row.chosen, row.rejected].filter(Array.isArray).length;
  if (chat === 1 && !present('prompt'))
    throw refuseShape(
      row,
      where,
      'pair',
      'prompt',
      'has no "prompt" and mixes a conversation and text in chosen/rejected',
    );
  if (chat === 2) {
    const pair = conversationPair(row, where, options);
    if (pair) return pair;
    if (!present('prompt'))
      throw refuseShape(
        row,
        where,
        'pair',
        'prompt',
        'has only the answers in "chosen"/"rejected" and no "prompt"',
      );
  }
  if (!present('prompt')) {
    if (typeof row.chosen !== 'string' || typeof row.rejected !== 'string')
      throw refuseShape(
        row,
        where,
        'pair',
        'prompt',
        'has no "prompt" and token-id responses, which have no shared text',
      );
    const cut = splitSharedText(row.chosen, row.rejected);
    if (cut <= 0)
      throw refuseShape(
        row,
        where,
        'pair',
        'prompt',
        cut === 0
          ? 'has no "prompt" and chosen/rejected share no prefix'
          : 'has one response a prefix of the other',
      );
    return {
      prompt: { text: row.chosen.slice(0, cut) },
      chosen: { text: row.chosen.slice(cut) },
      rejected: { text: row.rejected.slice(cut) },
    };
  }
  return {
    prompt: promptField(row, where, options),
    chosen: responseField(row, 'chosen', where, options),
    rejected: responseField(row, 'rejected', where, options),
  };
}

export function parsePairRecord(value: unknown, where: string, options: RecordOptions = {}): PairRecord {
  const row = asRow(value, where);
  const pair = pairOf(row, where, options);
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
  if (!has(row, 'completion') && !has(row, 'completion_ids'))
    throw refuseShape(row, where, 'sft', 'completion', 'has no completion to learn');
  if (!has(row, 'prompt') && !has(row, 'prompt_ids'))
    throw refuseShape(row, where, 'sft', 'prompt', 'has no "prompt"');
  // TRL's conversational prompt-completion: the prompt a list of messages, the completion the assistant's.
  return {
    kind: 'prompt-completion',
    prompt: promptField(row, where, options),
    completion: responseField(row, 'completion', where, options),
  };
}

/** Verbatim ids, or the text through `encode`. */
export function textOrIdsToIds(value: TextOrIds, encode: (text: string) => number[]): number[] {
  return 'ids' in value ? value.ids : encode(value.text);
}
