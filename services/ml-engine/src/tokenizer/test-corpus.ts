/**
 * A small seeded corpus for tokenizer tests: short movie-review sentences in the style of the reference
 * task (docs/ARCHITECTURE.md), plus a few lines of accented, emoji and CJK text so byte-level merges of
 * multi-byte characters get exercised.
 */
import { Rng } from '../random/rng.js';

const NOUNS = ['movie', 'acting', 'plot', 'ending', 'music', 'cast', 'story'];
const ADJ = ['great', 'superb', 'awful', 'boring', 'lovely', 'dull', 'wonderful', 'terrible'];
const ADV = ['really', 'very', 'quite', 'truly'];
const VERBS = ['loved', 'hated', 'enjoyed', 'liked'];
const EXTRA = [
  'café crème déjà vu',
  'naïve über façade',
  'emoji 🎬🍿 night 🤖',
  '映画 は 最高 です',
  "it's, we're; they'll!",
];

export function reviewCorpus(lines: number, seed: number): string[] {
  const rng = new Rng(seed);
  const pick = (words: readonly string[]) => words[rng.int(words.length)]!;
  const clause = () => {
    switch (rng.int(3)) {
      case 0:
        return `the ${pick(NOUNS)} was ${rng.int(2) ? `${pick(ADV)} ` : ''}${pick(ADJ)}`;
      case 1:
        return `i ${rng.int(2) ? 'really ' : ''}${pick(VERBS)} it`;
      default:
        return `it was a ${pick(ADV)} ${pick(ADJ)} ${pick(NOUNS)}`;
    }
  };
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const sentences = 1 + rng.int(4);
    out.push(Array.from({ length: sentences }, () => `${clause()} .`).join(' '));
    if (i % 20 === 0) out.push(pick(EXTRA));
  }
  return out;
}
