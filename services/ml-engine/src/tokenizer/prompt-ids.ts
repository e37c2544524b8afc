/**
 * The one rule for turning prompts and responses into token ids, as Hugging Face does it. Generation,
 * training examples, reward and preference scoring and the services all use these functions:
 *
 * - ids given by the caller are used verbatim: nothing is added before or after them;
 * - text goes through the tokenizer's own rule, as `tokenizer(text)` in transformers: the post-processor of
 *   tokenizer.json (Llama 3 puts BOS first) or the `add_bos_token` / `add_eos_token` flags of
 *   tokenizer_config.json (Llama 2, Mistral); Qwen2 and GPT-2 style tokenizers add nothing;
 * - a chat template's text is encoded without adding special tokens, as `apply_chat_template(tokenize=True)`
 *   does: the template writes whatever BOS the model expects;
 * - a response given as text is encoded without special tokens and ends with EOS.
 */
import type { Tokenizer } from './tokenizer.js';

export type TextOrIds = { text: string } | { ids: readonly number[] };

/** `text` as transformers' `tokenizer(text)` encodes it: with the tokenizer's own special tokens. */
export function textPromptIds(tok: Tokenizer, text: string): number[] {
  return tok.encode(text, { addSpecialTokens: true });
}

/** A rendered chat template as `apply_chat_template(..., tokenize=True)` encodes it: nothing added. */
export function chatPromptIds(tok: Tokenizer, rendered: string): number[] {
  return tok.encode(rendered);
}

/** A prompt's ids: given ids verbatim, text through the tokenizer's own rule. */
export function promptIds(tok: Tokenizer, prompt: TextOrIds): number[] {
  return 'ids' in prompt ? [...prompt.ids] : textPromptIds(tok, prompt.text);
}

/** A response's ids: given ids verbatim (they say themselves where the text ends), text then EOS. */
export function responseIds(tok: Tokenizer, response: TextOrIds): number[] {
  return 'ids' in response ? [...response.ids] : [...tok.encode(response.text), tok.eosId];
}

/**
 * How many ids the tokenizer's own rule puts before the text (1 for a BOS-first template, 0 for Qwen2 or
 * GPT-2): a row cut to fit the context keeps these and drops text after them.
 */
export function specialPrefixLength(tok: Tokenizer): number {
  const plain = tok.encode('a');
  const marked = textPromptIds(tok, 'a');
  for (let i = 0; i + plain.length <= marked.length; i++) {
    if (plain.every((id, k) => marked[i + k] === id)) return i;
  }
  return 0;
}

/**
 * The text of a prompt's ids for outputs that carry prompts as text (generations, evaluation rows), written
 * so that reading it back by the rule above gives the same ids: the special tokens the tokenizer's own rule
 * puts first (a chat template's BOS, or BOS given with the ids) are left out when the ids start with them,
 * since encoding the text puts them back.
 */
export function promptText(tok: Tokenizer, ids: readonly number[]): string {
  const prefix = textPromptIds(tok, 'a').slice(0, specialPrefixLength(tok));
  const starts = prefix.length > 0 && prefix.every((id, k) => ids[k] === id);
  return tok.decode(starts ? ids.slice(prefix.length) : ids);
}
