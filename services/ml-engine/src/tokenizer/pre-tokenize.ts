/**
 * GPT-2's pre-tokenizer: the regular expression HF's `ByteLevel` pre-tokenizer applies (with
 * `use_regex: true`) before BPE. It splits off English contractions, letter runs and digit runs with at
 * most one leading space, punctuation runs likewise, and whitespace so that a run of spaces gives its last
 * space to the following word. Merges never cross these pieces, so the trainer must split exactly as the
 * loader does, or learned merges would never apply.
 */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** The pieces GPT-2's pattern cuts `text` into (their concatenation is `text`). */
export function splitGpt2(text: string): string[] {
  return text.match(GPT2_SPLIT) ?? [];
}
