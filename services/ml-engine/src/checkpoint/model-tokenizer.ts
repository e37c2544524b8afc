/**
 * How a model's config.json and its tokenizer agree. config.json's `bos_token_id`, `eos_token_id` and
 * `pad_token_id` are the one source of truth: `tokenizer_config.json` is written from them (naming the
 * tokens HF tools need), and the tokenizer must fit in the model's `vocab_size` embedding rows.
 */
import { invalidInput } from '../engine-error.js';
import type { LlamaConfig } from '../model/config.js';
import type { SpecialTokens } from '../tokenizer/special-tokens.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { TokenizerJson } from '../tokenizer/tokenizer-json.js';

const ROLES = ['bos', 'eos', 'pad'] as const;
type Role = (typeof ROLES)[number];
const idField = (role: Role) => `${role}_token_id` as const;

/** The token strings of a `tokenizer.json` by id (added tokens win over the model's vocabulary, as in HF). */
function tokensById(json: TokenizerJson): Map<number, string> {
  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(json.model?.vocab ?? {})) byId.set(id, token);
  for (const t of json.added_tokens ?? []) byId.set(t.id, t.content);
  return byId;
}

/**
 * The special tokens named by config.json's ids, plus every other special added token (in id order), for
 * `writeTokenizerFiles`. `configFile` names config.json in errors.
 */
export function specialTokensOf(config: LlamaConfig, json: TokenizerJson, configFile: string): SpecialTokens {
  const byId = tokensById(json);
  const name = (role: Role): string => {
    const id = config[idField(role)] as number;
    const token = byId.get(id);
    if (token === undefined) {
      throw invalidInput(
        `${configFile}: field "${idField(role)}" is ${id}, which is not a token of the tokenizer`,
        `${configFile}:${idField(role)}`,
        `set it to the id of the ${role} token in tokenizer.json`,
      );
    }
    return token;
  };
  const bos = config.bos_token_id === null ? null : name('bos');
  const eos = name('eos');
  const pad = name('pad');
  const extra = (json.added_tokens ?? [])
    .filter((t) => t.special && t.content !== bos && t.content !== eos && t.content !== pad)
    .sort((a, b) => a.id - b.id)
    .map((t) => t.content);
  return { bos, eos, pad, extra };
}

/**
 * `raw` (a parsed config file) with each of bos/eos/pad_token_id it leaves out taken from the tokenizer.
 * HF writes `null` for "no such token" (often the pad token); that takes the tokenizer's id too.
 */
export function withTokenizerIds(
  raw: Record<string, unknown>,
  tokenizer: Tokenizer,
): Record<string, unknown> {
  // A tokenizer without BOS leaves bos_token_id null: no EOS stands in for it.
  const ids: Record<Role, number | null> = {
    bos: tokenizer.bosId ?? null,
    eos: tokenizer.eosId,
    pad: tokenizer.padId,
  };
  const out = { ...raw };
  for (const role of ROLES) if (out[idField(role)] == null) out[idField(role)] = ids[role];
  return out;
}

/** The embedding has a row for every token: the tokenizer may be smaller than `vocab_size`, never larger. */
export function checkTokenizerFits(
  config: LlamaConfig,
  tokenizer: Tokenizer,
  configFile: string,
  tokenizerFile: string,
): void {
  if (tokenizer.vocabSize > config.vocab_size) {
    throw invalidInput(
      `${configFile}: field "vocab_size" is ${config.vocab_size}, but ${tokenizerFile} has ${tokenizer.vocabSize} tokens`,
      `${configFile}:vocab_size`,
      `set vocab_size to at least ${tokenizer.vocabSize}, or use a smaller tokenizer`,
    );
  }
}

/** A loaded tokenizer whose bos/eos/pad disagree with config.json would generate and pad with other ids. */
export function checkSpecialIdsAgree(
  config: LlamaConfig,
  tokenizer: Tokenizer,
  configFile: string,
  tokenizerConfigFile: string,
): void {
  const ids: Record<Role, number | undefined> = {
    bos: tokenizer.bosId,
    eos: tokenizer.eosId,
    pad: tokenizer.padId,
  };
  for (const role of ROLES) {
    if ((ids[role] ?? null) !== config[idField(role)]) {
      throw invalidInput(
        `${tokenizerConfigFile}: the ${role} token is id ${ids[role]}, but ${configFile} has "${idField(role)}": ${config[idField(role)]}`,
        `${configFile}:${idField(role)}`,
        `make ${idField(role)} and ${role}_token in ${tokenizerConfigFile} name the same token`,
      );
    }
  }
}
