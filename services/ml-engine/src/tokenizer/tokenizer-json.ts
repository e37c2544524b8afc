/**
 * The parts of Hugging Face's `tokenizer.json` format we write, and a builder for the byte-level BPE file
 * our trainer produces. The file is what `tokenizers` (Rust/Python), `transformers`' fast tokenizers and
 * `@huggingface/tokenizers` (JS) all load, so a model directory we write works in HF tools unchanged.
 */
import { BYTE_TO_CHAR } from './byte-unicode.js';
import { type SpecialTokens, specialTokenList } from './special-tokens.js';

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export interface BpeModelJson {
  type: 'BPE';
  dropout: number | null;
  unk_token: string | null;
  continuing_subword_prefix: string | null;
  end_of_word_suffix: string | null;
  fuse_unk: boolean;
  byte_fallback: boolean;
  ignore_merges: boolean;
  vocab: Record<string, number>;
  /** `"left right"` strings (the pre-0.20 form every HF version reads) or `[left, right]` pairs. */
  merges: string[] | [string, string][];
}

/** A `tokenizer.json` document. Components other than the model stay loosely typed: we pass them through. */
export interface TokenizerJson {
  version: string;
  truncation: unknown;
  padding: unknown;
  added_tokens: AddedTokenJson[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: BpeModelJson;
}

/** The byte alphabet in the order HF's trainer gives it ids: by code point of the table character. */
export function byteAlphabet(): string[] {
  return [...BYTE_TO_CHAR].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
}

/**
 * A `TemplateProcessing` post-processor that prepends BOS, as Llama-3's file does. Text prompts get it
 * here as in HF tools (tokenizer/prompt-ids.ts), so a model trained here sees the same sequences when it is
 * used through `transformers`.
 */
function prependBos(bos: string, bosId: number): unknown {
  const bosPiece = (typeId: number) => ({ SpecialToken: { id: bos, type_id: typeId } });
  const sequence = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
  return {
    type: 'TemplateProcessing',
    single: [bosPiece(0), sequence('A', 0)],
    pair: [bosPiece(0), sequence('A', 0), bosPiece(1), sequence('B', 1)],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
}

/**
 * A complete byte-level BPE `tokenizer.json`: `vocab` lists tokens in id order (specials first), `merges`
 * in rank order. The pre-tokenizer is GPT-2's ByteLevel without a prefix space, so text round-trips exactly.
 */
export function byteLevelBpeJson(
  vocab: readonly string[],
  merges: readonly (readonly [string, string])[],
  specials: SpecialTokens,
): TokenizerJson {
  const vocabObject: Record<string, number> = {};
  vocab.forEach((token, id) => {
    vocabObject[token] = id;
  });
  const added_tokens = specialTokenList(specials).map((content) => ({
    id: vocabObject[content]!,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: specials.bos === null ? null : prependBos(specials.bos, vocabObject[specials.bos]!),
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: vocabObject,
      merges: merges.map(([left, right]) => `${left} ${right}`),
    },
  };
}
