/**
 * Reading and writing the tokenizer files of a model directory: `tokenizer.json` (the tokenizer itself)
 * and `tokenizer_config.json` (which token is bos/eos/pad, which `tokenizer.json` does not record, and the
 * chat template when the model has one).
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { EngineError, invalidInput } from '../engine-error.js';
import { DEFAULT_SPECIAL_TOKENS, type SpecialTokens } from './special-tokens.js';
import { type SpecialTokenNames, type Tokenizer, tokenizerFromJson } from './tokenizer.js';
import type { TokenizerJson } from './tokenizer-json.js';

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new EngineError(
      missing ? 'NOT_FOUND' : 'INVALID_ARGUMENT',
      `cannot read ${path}: ${(cause as Error).message}`,
      {
        field: path,
        cause,
      },
    );
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw invalidInput(`${path} is not valid JSON: ${(cause as Error).message}`, path);
  }
}

/** `tokenizer_config.json` writes special tokens as a string or as `{ "content": ... }`. */
function tokenName(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { content?: unknown }).content === 'string'
  ) {
    return (value as { content: string }).content;
  }
  return undefined;
}

async function specialsFromConfig(dir: string): Promise<SpecialTokenNames> {
  const path = join(dir, 'tokenizer_config.json');
  const exists = await stat(path).then(
    () => true,
    () => false,
  );
  if (!exists) return {};
  const config = (await readJson(path)) as Record<string, unknown>;
  const names: SpecialTokenNames = {};
  const bos = tokenName(config.bos_token);
  const eos = tokenName(config.eos_token);
  const pad = tokenName(config.pad_token);
  // An explicit null means "this tokenizer has none" (Qwen2's bos_token), not "guess by name".
  if (bos !== undefined) names.bos = bos;
  else if (config.bos_token === null) names.bos = null;
  if (eos !== undefined) names.eos = eos;
  if (pad !== undefined) names.pad = pad;
  else if (config.pad_token === null) names.pad = null;
  return names;
}

/**
 * Loads a tokenizer from a model directory or a `tokenizer.json` path. Special tokens come from
 * `specials`, else `tokenizer_config.json` beside the file, else well-known names.
 */
export async function loadTokenizer(path: string, specials: SpecialTokenNames = {}): Promise<Tokenizer> {
  const isDir = await stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
  const file = isDir ? join(path, 'tokenizer.json') : path;
  const json = await readJson(file);
  const fromConfig = await specialsFromConfig(dirname(file));
  return tokenizerFromJson(json, { specials: { ...fromConfig, ...specials }, source: file });
}

/** The `tokenizer_config.json` HF's `AutoTokenizer` needs to know our specials and keep text exact. */
export function tokenizerConfigJson(
  specials: SpecialTokens,
  modelMaxLength?: number,
  chatTemplate?: string,
): Record<string, unknown> {
  const config: Record<string, unknown> = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: specials.bos,
    eos_token: specials.eos,
    pad_token: specials.pad,
    clean_up_tokenization_spaces: false,
  };
  if (specials.extra.length > 0) config.additional_special_tokens = [...specials.extra];
  if (modelMaxLength !== undefined) config.model_max_length = modelMaxLength;
  if (chatTemplate !== undefined) config.chat_template = chatTemplate;
  return config;
}

/**
 * Writes `tokenizer.json` and `tokenizer_config.json` into `dir` (which must exist). Meant for a directory
 * being assembled by `writeDirectoryAtomically`, so readers never see one file without the other.
 */
export async function writeTokenizerFiles(
  dir: string,
  json: TokenizerJson,
  specials: Partial<SpecialTokens> = {},
  modelMaxLength?: number,
  chatTemplate?: string,
): Promise<void> {
  const config = tokenizerConfigJson(
    { ...DEFAULT_SPECIAL_TOKENS, ...specials },
    modelMaxLength,
    chatTemplate,
  );
  await writeFile(join(dir, 'tokenizer.json'), `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(join(dir, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
}
