/**
 * The special tokens our trainer reserves. Their ids come first (bos 0, eos 1, pad 2, then any extras) so
 * a model's embedding rows for them sit at fixed places whatever the corpus.
 */
export interface SpecialTokens {
  /** null for a tokenizer without BOS (imported Qwen2 tokenizers); ours always have one. */
  bos: string | null;
  eos: string;
  pad: string;
  /** More reserved tokens (e.g. chat markers), given ids after pad, in this order. */
  extra: readonly string[];
}

export const DEFAULT_SPECIAL_TOKENS: SpecialTokens = {
  bos: '<|bos|>',
  eos: '<|eos|>',
  pad: '<|pad|>',
  extra: [],
};

/** The specials in id order: bos, eos, pad, extras. */
export function specialTokenList(specials: SpecialTokens): string[] {
  return [specials.bos, specials.eos, specials.pad, ...specials.extra].filter((t): t is string => t !== null);
}
