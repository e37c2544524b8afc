/**
 * The pairwise preference model's text format (RLHFlow's pair-preference recipe):
 *   [CONTEXT] {x} [RESPONSE A] {a} [RESPONSE B] {b} [ANSWER]  ->  target "A" or "B"
 * Training randomises which response is shown first, so the model cannot learn a position; inference scores
 * both orders and averages (see the preference-model service).
 */
import type { Rng } from '../random/rng.js';
import { textPromptIds } from '../tokenizer/prompt-ids.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Example } from './examples.js';

export function preferencePrompt(context: string, a: string, b: string): string {
  return `[CONTEXT] ${context.trim()} [RESPONSE A] ${a.trim()} [RESPONSE B] ${b.trim()} [ANSWER]`;
}

/** Token ids of the two answers; each must be one token so P(A) and P(B) are single-token probabilities. */
export function answerIds(tok: Tokenizer): { a: number; b: number } {
  const a = tok.encode('A');
  const b = tok.encode('B');
  if (a.length !== 1 || b.length !== 1)
    throw new Error('the tokenizer must encode "A" and "B" as one token each');
  return { a: a[0] as number, b: b[0] as number };
}

/** One training example: the prompt with the responses in a random order, the winner's letter as target. */
export function preferenceExample(
  tok: Tokenizer,
  context: string,
  chosen: string,
  rejected: string,
  rng: Rng,
  maxLen: number,
): Example {
  const chosenFirst = rng.uniform() < 0.5;
  const prompt = preferencePrompt(context, chosenFirst ? chosen : rejected, chosenFirst ? rejected : chosen);
  const { a, b } = answerIds(tok);
  // Keep the tail (answer marker and target) when the text is too long: cut the middle of the prompt.
  let ids = textPromptIds(tok, prompt);
  if (ids.length + 1 > maxLen)
    ids = [...ids.slice(0, Math.max(1, maxLen - 1 - 8)), ...ids.slice(ids.length - 8)];
  ids.push(chosenFirst ? a : b);
  return { ids, targets: ids.map((_, i) => i === ids.length - 1) };
}
