/**
 * Several end-of-sequence tokens, as HF chat models have them (Llama 3: end of text, end of message, end of
 * turn): `eos_token_id` in config.json or generation_config.json may be a list. A model directory keeps one
 * EOS in config.json (the tokenizer's, which training appends) and the others in its own
 * `generation_config.json`, as transformers writes it; generation ends a sample on any of them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidInput } from '../engine-error.js';
import type { LlamaConfig } from '../model/config.js';

export const GENERATION_CONFIG = 'generation_config.json';

/** The ids an `eos_token_id` field holds: none, one, or a list; `where` names it in errors. */
export function endIdsOf(value: unknown, where: string): number[] {
  if (value === undefined || value === null) return [];
  const ids = Array.isArray(value) ? value : [value];
  if (!ids.every((id) => Number.isInteger(id) && id >= 0))
    throw invalidInput(`${where}: expected a token id or a list of them, got something else`, where);
  return ids as number[];
}

/** `eos_token_id` of a directory's generation_config.json, or [] without one. */
export async function generationEndIds(dir: string): Promise<number[]> {
  const file = join(dir, GENERATION_CONFIG);
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw invalidInput(`${file} is not valid JSON: ${(cause as Error).message}`, file);
  }
  return endIdsOf((parsed as Record<string, unknown> | null)?.eos_token_id, `${file}:eos_token_id`);
}

/** The end tokens besides config.eos_token_id, each once, checked to be in the vocabulary. */
export function extraEndIds(config: LlamaConfig, ids: readonly number[], where: string): number[] {
  const extra = [...new Set(ids)].filter((id) => id !== config.eos_token_id);
  for (const id of extra)
    if (id >= config.vocab_size)
      throw invalidInput(
        `${where}: end token ${id} is outside the vocabulary (size ${config.vocab_size})`,
        where,
      );
  return extra;
}

/** generation_config.json as transformers reads it: the EOS, with the other end tokens in a list. */
export function generationConfigJson(
  config: LlamaConfig,
  endTokenIds: readonly number[] = [],
): Record<string, unknown> {
  return {
    bos_token_id: config.bos_token_id,
    eos_token_id: endTokenIds.length ? [config.eos_token_id, ...endTokenIds] : config.eos_token_id,
    pad_token_id: config.pad_token_id,
  };
}
