/**
 * Field checks shared by the dataset record parsers. Messages follow one pattern,
 * `file:line: field "x" expected <type>`, so a user can fix the row without reading code.
 */
import { type EngineError, invalidInput } from '../engine-error.js';

export interface RecordOptions {
  /** When given, token-id fields must hold ids below it. */
  vocabSize?: number;
  /**
   * Chat messages as a prompt (the model's chat template with the generation prompt, as ids encoded
   * without special tokens: `chatPrompt`); without it, their contents joined by newlines as text.
   */
  chat?: (messages: readonly ChatMessage[], where: string) => TextOrIds;
}

export type Row = Record<string, unknown>;

/** A piece of a record given either as text or as token ids (the `_ids` variant, used verbatim). */
export type TextOrIds = { text: string } | { ids: number[] };

export interface ChatMessage {
  role: string;
  content: string;
}

export function fieldError(where: string, field: string, expected: string, got?: unknown): EngineError {
  const suffix = got === undefined ? '' : `, got ${describe(got)}`;
  return invalidInput(`${where}: field "${field}" expected ${expected}${suffix}`, `${where}:${field}`);
}

/** The kind of a value, never the value: an error may reach a remote caller, and the data is not theirs. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number')
    return Number.isInteger(value) ? (value < 0 ? 'a negative integer' : 'an integer') : 'a fraction';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'boolean') return 'a boolean';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

export function asRow(value: unknown, where: string): Row {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidInput(
      `${where}: expected a JSON object, got ${describe(value)}`,
      where,
      'write one JSON object per line',
    );
  }
  return value as Row;
}

export function stringField(row: Row, field: string, where: string): string {
  const value = row[field];
  if (typeof value !== 'string') throw fieldError(where, field, 'string', value);
  return value;
}

export function optionalNumberField(row: Row, field: string, where: string): number | undefined {
  const value = row[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw fieldError(where, field, 'a finite number', value);
  return value;
}

export function idsField(row: Row, field: string, where: string, options: RecordOptions): number[] {
  const value = row[field];
  if (!Array.isArray(value)) throw fieldError(where, field, 'an array of token ids', value);
  const limit = options.vocabSize;
  value.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0) {
      throw invalidInput(
        `${where}: field "${field}"[${i}] expected a token id (integer >= 0), got ${describe(id)}`,
        `${where}:${field}`,
      );
    }
    if (limit !== undefined && id >= limit) {
      throw invalidInput(
        `${where}: field "${field}"[${i}] = ${id} is outside the vocabulary (vocab size ${limit})`,
        `${where}:${field}`,
        'tokenize with the model’s own tokenizer',
      );
    }
  });
  return value as number[];
}

/** `name` as text or `name_ids` as ids; exactly one of the two must be present. */
export function textOrIdsField(row: Row, name: string, where: string, options: RecordOptions): TextOrIds {
  const hasText = row[name] !== undefined;
  const hasIds = row[`${name}_ids`] !== undefined;
  if (hasText && hasIds) {
    throw invalidInput(`${where}: give "${name}" or "${name}_ids", not both`, `${where}:${name}`);
  }
  if (hasIds) return { ids: idsField(row, `${name}_ids`, where, options) };
  if (!hasText) throw fieldError(where, name, `string (or "${name}_ids": token ids)`);
  return { text: stringField(row, name, where) };
}

export function messagesField(row: Row, field: string, where: string): ChatMessage[] {
  const value = row[field];
  if (!Array.isArray(value) || value.length === 0) {
    throw fieldError(where, field, 'a non-empty array of {"role", "content"} messages', value);
  }
  return value.map((m, i) => {
    const item = `${field}[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      throw fieldError(where, item, 'an object', m);
    const message = m as Row;
    return {
      role: stringField(message, 'role', `${where}: ${item}`),
      content: stringField(message, 'content', `${where}: ${item}`),
    };
  });
}
