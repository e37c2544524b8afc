/**
 * `rlhf data synth sentiment`: every file the reference task needs, from one seed. Pure: it returns file
 * contents, and the caller writes them (atomically).
 */
import { Rng } from '@rlhf/ml-engine/random';
import { type AnnotatorModel, annotate, bayesRate, defaultAnnotators, type Judged } from './annotators.js';
import { goldReward, wordCount } from './gold.js';
import { adjectives, defaultGrammarOptions, type GrammarOptions, sampleReview, verbs } from './grammar.js';

export interface SynthOptions {
  seed: number;
  sftExamples: number;
  prompts: number;
  evalPrompts: number;
  preferencePairs: number;
  preferenceEvalPairs: number;
  annotators: AnnotatorModel;
  grammar: GrammarOptions;
}

export const defaultSynthOptions: SynthOptions = {
  seed: 42,
  sftExamples: 4000,
  prompts: 2048,
  evalPrompts: 256,
  preferencePairs: 4000,
  preferenceEvalPairs: 1000,
  annotators: defaultAnnotators,
  grammar: defaultGrammarOptions,
};

export interface SplitReview {
  prompt: string;
  /** Starts with a space, so prompt + completion is the review text exactly. */
  completion: string;
}

/**
 * Prompt = the first 2-3 words, cut before the first sentiment word so that the policy, not the prompt,
 * decides how positive the review is.
 */
export function splitReview(rng: Rng, words: string[]): SplitReview {
  let k = 2 + rng.int(2);
  const firstSentiment = words.findIndex((w) => adjectives.has(w) || verbs.has(w));
  if (firstSentiment >= 0) k = Math.min(k, firstSentiment);
  k = Math.max(1, k);
  return { prompt: words.slice(0, k).join(' '), completion: ` ${words.slice(k).join(' ')}` };
}

function sampleWithPrompt(rng: Rng, prompt: string, grammar: GrammarOptions): string {
  const prefix = prompt.split(' ');
  for (let tries = 0; tries < 10_000; tries++) {
    const words = sampleReview(rng, grammar);
    if (prefix.every((w, i) => words[i] === w) && words.length > prefix.length) {
      return ` ${words.slice(prefix.length).join(' ')}`;
    }
  }
  throw new Error(`no review of the grammar starts with "${prompt}"`);
}

function judged(prompt: string, completion: string): Judged {
  return { gold: goldReward({ prompt, completion, endedWithEos: true }), words: wordCount(completion) };
}

interface Pair {
  prompt: string;
  chosen: string;
  rejected: string;
  judged: [Judged, Judged];
}

function labelledPairs(rng: Rng, n: number, o: SynthOptions): Pair[] {
  const pairs: Pair[] = [];
  for (let i = 0; i < n; i++) {
    const { prompt, completion: a } = splitReview(rng, sampleReview(rng, o.grammar));
    const b = sampleWithPrompt(rng, prompt, o.grammar);
    if (a === b) {
      i--;
      continue;
    }
    const ja = judged(prompt, a);
    const jb = judged(prompt, b);
    const aWins = annotate(rng, ja, jb, o.annotators);
    pairs.push({ prompt, chosen: aWins ? a : b, rejected: aWins ? b : a, judged: [ja, jb] });
  }
  return pairs;
}

const jsonl = (rows: unknown[]): string =>
  rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');

export interface SynthResult {
  files: Record<string, string>;
  summary: Record<string, unknown>;
}

export function synthesizeSentimentTask(options: Partial<SynthOptions> = {}): SynthResult {
  const o = { ...defaultSynthOptions, ...options };
  const root = new Rng(o.seed);
  const sftRng = root.fork();
  const promptRng = root.fork();
  const prefRng = root.fork();

  const sft = Array.from({ length: o.sftExamples }, () =>
    splitReview(sftRng, sampleReview(sftRng, o.grammar)),
  );
  const prompts = Array.from({ length: o.prompts + o.evalPrompts }, () => ({
    prompt: splitReview(promptRng, sampleReview(promptRng, o.grammar)).prompt,
  }));
  const train = labelledPairs(prefRng, o.preferencePairs, o);
  const heldOut = labelledPairs(prefRng, o.preferenceEvalPairs, o);
  const sftGold = sft.map((r) => goldReward({ ...r, endedWithEos: true }));
  const meanWords = sft.reduce((s, r) => s + wordCount(r.completion), 0) / Math.max(1, sft.length);

  const summary = {
    task: 'sentiment',
    seed: o.seed,
    counts: {
      sft: sft.length,
      prompts: o.prompts,
      evalPrompts: o.evalPrompts,
      preferences: train.length,
      preferencesEval: heldOut.length,
    },
    annotators: o.annotators,
    grammar: o.grammar,
    bayesRate: {
      train: bayesRate(
        train.map((p) => p.judged),
        o.annotators,
      ),
      eval: bayesRate(
        heldOut.map((p) => p.judged),
        o.annotators,
      ),
    },
    sft: {
      meanGold: sftGold.reduce((s, g) => s + g, 0) / Math.max(1, sftGold.length),
      meanCompletionWords: meanWords,
    },
  };
  const pairRow = (p: Pair): Record<string, string> => ({
    prompt: p.prompt,
    chosen: p.chosen,
    rejected: p.rejected,
  });
  return {
    files: {
      'sft.jsonl': jsonl(sft),
      'prompts.jsonl': jsonl(prompts.slice(0, o.prompts)),
      'eval.jsonl': jsonl(prompts.slice(o.prompts)),
      'preferences.jsonl': jsonl(train.map(pairRow)),
      'preferences-eval.jsonl': jsonl(heldOut.map(pairRow)),
      'corpus.txt': `${sft.map((r) => r.prompt + r.completion).join('\n')}\n`,
      'task.json': `${JSON.stringify(summary, null, 2)}\n`,
    },
    summary,
  };
}
