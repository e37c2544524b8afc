/**
 * The gold reward ("the human") of the reference task: the AFINN-165 score (the `sentiment` package) summed
 * over the completion and divided by its word count, for a review that parses under the grammar and ended
 * with EOS; anything else scores -2. The gate matters: without it, broken text such as
 * "the acting was superb impressive ." games the per-word score.
 */
import Sentiment from 'sentiment';
import { parsesAsReview, reviewWords } from './grammar.js';

export const ungrammaticalGold = -2;
const analyzer = new Sentiment();

/** Words as the length measures of the task count them (letters only; "." is not a word). */
export function wordCount(text: string): number {
  return (text.toLowerCase().match(/[a-z']+/g) ?? []).length;
}

export interface GoldInput {
  prompt: string;
  completion: string;
  /** Whether generation stopped on the EOS token (not on the token limit). */
  endedWithEos: boolean;
}

export function isGrammatical(input: GoldInput): boolean {
  return input.endedWithEos && parsesAsReview(reviewWords(`${input.prompt} ${input.completion}`));
}

export function goldReward(input: GoldInput): number {
  if (!isGrammatical(input)) return ungrammaticalGold;
  const words = wordCount(input.completion);
  if (words === 0) return ungrammaticalGold;
  return analyzer.analyze(input.completion).score / words;
}
