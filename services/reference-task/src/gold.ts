/**
 * The gold reward ("the human") of the reference task, version 2 (docs/ARCHITECTURE.md, the reference task):
 * for a review that parses under the grammar and ended with EOS, the AFINN-165 scores (the `sentiment`
 * package) of its distinct sentences summed, divided by max(completion words, L0); anything else scores -2.
 * - The gate stops broken text such as "the acting was superb impressive ." from gaming the score.
 * - Distinct sentences: repeating a sentence adds words but no sentiment, so repetition does not pay.
 * - L0: a reply shorter than a real review is diluted ("superb ." scores 5/10), so the optimum is a whole,
 *   consistently positive review and not one strong word, which a per-word mean made it.
 */
import Sentiment from 'sentiment';
import { parsesAsReview, reviewWords } from './grammar.js';

export const ungrammaticalGold = -2;

/**
 * L0, the length below which a reply is diluted: 10 words, a little under the mean completion of the SFT data
 * (12.1 words over seeds 1-3) and of pi_0's samples (12.1 at temperature 1.0, 10.9 at the recipe's 0.8, seed
 * 1). A review of one or two short sentences falls under it and loses gold for the sentences it lacks; a
 * typical review of three or more does not, and above L0 length neither helps nor hurts by itself.
 */
export const goldLengthFloor = 10;

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

/** The review's sentences (prompt and completion together), each once, as space-joined words. */
export function distinctSentences(prompt: string, completion: string): string[] {
  const sentences = new Set<string>();
  let current: string[] = [];
  for (const w of reviewWords(`${prompt} ${completion}`)) {
    if (w === '.') {
      if (current.length > 0) sentences.add(current.join(' '));
      current = [];
    } else current.push(w);
  }
  if (current.length > 0) sentences.add(current.join(' '));
  return [...sentences];
}

export function goldReward(input: GoldInput): number {
  if (!isGrammatical(input)) return ungrammaticalGold;
  const words = wordCount(input.completion);
  if (words === 0) return ungrammaticalGold;
  let sentiment = 0;
  for (const s of distinctSentences(input.prompt, input.completion)) sentiment += analyzer.analyze(s).score;
  return sentiment / Math.max(words, goldLengthFloor);
}
