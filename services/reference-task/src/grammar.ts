/**
 * The review grammar of the reference task (docs/ARCHITECTURE.md). A review is 1-4 sentences; a sentence is
 * one clause, or two joined by "and"/"but", followed by " ."; a clause is one of three templates:
 *   the NOUN was [ADV] ADJ          i [really] VERB it          it was a|an [ADV] ADJ NOUN
 * Each review draws a polarity, and each sentiment word agrees with it most of the time, so sentiment words
 * are half positive and half negative overall while reviews still vary in how positive they are.
 * Filler words (nouns, adverbs, articles) carry no AFINN score, so only the sentiment words move the gold.
 */
import type { Rng } from '@rlhf/ml-engine/random';

export const nouns = [
  'movie',
  'film',
  'acting',
  'plot',
  'story',
  'ending',
  'cast',
  'script',
  'music',
  'dialogue',
  'soundtrack',
  'pacing',
];
export const adverbs = ['very', 'really', 'truly', 'quite', 'rather', 'so', 'totally'];
export const positiveAdjectives = [
  'great',
  'good',
  'superb',
  'wonderful',
  'brilliant',
  'amazing',
  'excellent',
  'fantastic',
  'beautiful',
  'impressive',
  'charming',
  'delightful',
  'enjoyable',
  'fun',
  'funny',
  'stunning',
  'perfect',
  'clever',
  'lovely',
  'nice',
];
export const negativeAdjectives = [
  'bad',
  'terrible',
  'awful',
  'boring',
  'dull',
  'horrible',
  'poor',
  'weak',
  'disappointing',
  'stupid',
  'ugly',
  'painful',
  'pointless',
  'annoying',
  'lame',
  'pathetic',
  'silly',
  'dreadful',
];
export const positiveVerbs = ['loved', 'liked', 'enjoyed', 'adored', 'admired', 'appreciated'];
export const negativeVerbs = ['hated', 'disliked', 'loathed'];
export const conjunctions = ['and', 'but'];

export const adjectives = new Set([...positiveAdjectives, ...negativeAdjectives]);
export const verbs = new Set([...positiveVerbs, ...negativeVerbs]);
const nounSet = new Set(nouns);
const adverbSet = new Set(adverbs);

export interface GrammarOptions {
  /** Probability that a sentiment word agrees with the review's polarity. */
  agreement: number;
  /** Probability of an optional adverb / "really". */
  adverbRate: number;
  /** Probability that a sentence has a second, conjoined clause. */
  conjunctionRate: number;
  maxSentences: number;
}

export const defaultGrammarOptions: GrammarOptions = {
  agreement: 0.85,
  adverbRate: 0.35,
  conjunctionRate: 0.25,
  maxSentences: 4,
};

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)] as T;
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

function clause(rng: Rng, positive: boolean, o: GrammarOptions): string[] {
  const agree = rng.uniform() < o.agreement;
  const pos = agree ? positive : !positive;
  const adj = (): string => pick(rng, pos ? positiveAdjectives : negativeAdjectives);
  const adv = (): string[] => (rng.uniform() < o.adverbRate ? [pick(rng, adverbs)] : []);
  switch (rng.int(3)) {
    case 0:
      return ['the', pick(rng, nouns), 'was', ...adv(), adj()];
    case 1:
      return [
        'i',
        ...(rng.uniform() < o.adverbRate ? ['really'] : []),
        pick(rng, pos ? positiveVerbs : negativeVerbs),
        'it',
      ];
    default: {
      const words = [...adv(), adj(), pick(rng, nouns)];
      return ['it', 'was', article(words[0] as string), ...words];
    }
  }
}

/** One review as words (sentences end with a "." word). */
export function sampleReview(rng: Rng, options: GrammarOptions = defaultGrammarOptions): string[] {
  const positive = rng.uniform() < 0.5;
  const sentences = 1 + rng.int(options.maxSentences);
  const words: string[] = [];
  for (let s = 0; s < sentences; s++) {
    words.push(...clause(rng, positive, options));
    if (rng.uniform() < options.conjunctionRate)
      words.push(pick(rng, conjunctions), ...clause(rng, positive, options));
    words.push('.');
  }
  return words;
}

/** Length of the clause starting at `i`, or 0 when no template matches there. */
function matchClause(w: string[], i: number): number {
  const at = (k: number): string | undefined => w[i + k];
  if (at(0) === 'the' && nounSet.has(at(1) ?? '') && at(2) === 'was') {
    if (adjectives.has(at(3) ?? '')) return 4;
    if (adverbSet.has(at(3) ?? '') && adjectives.has(at(4) ?? '')) return 5;
    return 0;
  }
  if (at(0) === 'i') {
    const k = at(1) === 'really' ? 2 : 1;
    return verbs.has(at(k) ?? '') && at(k + 1) === 'it' ? k + 2 : 0;
  }
  if (at(0) === 'it' && at(1) === 'was' && (at(2) === 'a' || at(2) === 'an')) {
    const k = adverbSet.has(at(3) ?? '') ? 4 : 3;
    const first = at(3) ?? '';
    if (adjectives.has(at(k) ?? '') && nounSet.has(at(k + 1) ?? '') && at(2) === article(first)) return k + 2;
  }
  return 0;
}

/** True when the words form a review under the grammar (1..maxSentences sentences, each ending in "."). */
export function parsesAsReview(words: string[], maxSentences = defaultGrammarOptions.maxSentences): boolean {
  let i = 0;
  let sentences = 0;
  while (i < words.length) {
    const first = matchClause(words, i);
    if (first === 0) return false;
    i += first;
    if (conjunctions.includes(words[i] ?? '')) {
      const second = matchClause(words, i + 1);
      if (second === 0) return false;
      i += 1 + second;
    }
    if (words[i] !== '.') return false;
    i += 1;
    sentences += 1;
  }
  return sentences >= 1 && sentences <= maxSentences;
}

/** Splits review text into grammar words: lowercase, "." as its own word. */
export function reviewWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/\./g, ' . ')
    .split(/\s+/)
    .filter((w) => w !== '');
}
