import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '@rlhf/ml-engine/random';
import { bayesRate, preferenceProbability } from './annotators.js';
import {
  distinctSentences,
  goldLengthFloor,
  goldReward,
  isGrammatical,
  ungrammaticalGold,
  wordCount,
} from './gold.js';
import { parsesAsReview, reviewWords, sampleReview } from './grammar.js';
import { splitReview, synthesizeSentimentTask } from './synth.js';

test('every sampled review parses; broken ones do not', () => {
  const rng = new Rng(1);
  for (let i = 0; i < 2000; i++) assert.ok(parsesAsReview(sampleReview(rng)));
  for (const bad of [
    'the acting was superb impressive .',
    'the acting was superb',
    'i loved .',
    'it was a amazing film .',
    'it was an good film .',
    'the acting was superb . the plot was dull . i hated it . i loved it . it was a good film .',
    '',
  ]) {
    assert.equal(parsesAsReview(reviewWords(bad)), false, bad);
  }
  assert.ok(
    parsesAsReview(reviewWords('the acting was superb and i really loved it . it was an awful plot .')),
  );
});

test('gold v2: distinct sentences summed, diluted below L0, gated on grammar and EOS', () => {
  assert.equal(goldLengthFloor, 10);
  const ok = { prompt: 'the acting was', completion: ' superb .', endedWithEos: true };
  // One strong word is diluted to a tenth of its AFINN score: 5 / max(1, 10).
  assert.equal(goldReward(ok), 0.5);
  assert.equal(goldReward({ prompt: 'the acting', completion: ' was superb .', endedWithEos: true }), 0.5);
  assert.equal(goldReward({ ...ok, endedWithEos: false }), ungrammaticalGold);
  assert.equal(
    goldReward({ prompt: 'the acting', completion: ' was superb impressive .', endedWithEos: true }),
    ungrammaticalGold,
  );
  assert.equal(goldReward({ prompt: 'the acting', completion: ' superb was .', endedWithEos: true }), -2);
  // A repeated sentence adds words but no sentiment.
  const once = goldReward({
    prompt: 'the plot',
    completion: ' was superb . i loved it .',
    endedWithEos: true,
  });
  const twice = goldReward({
    prompt: 'the plot',
    completion: ' was superb . i loved it . i loved it .',
    endedWithEos: true,
  });
  assert.equal(once, (5 + 3) / 10);
  assert.equal(twice, (5 + 3) / 10, 'at 9 words both are still diluted to L0');
  const longRepeat = goldReward({
    prompt: 'the plot',
    completion: ' was superb . i really loved it . i really loved it . i really loved it .',
    endedWithEos: true,
  });
  assert.equal(longRepeat, (5 + 3) / 14);
  assert.ok(longRepeat < once);
  // A whole, consistently positive review of about L0 words scores about 1, above the one strong word.
  const whole = goldReward({
    prompt: 'the acting',
    completion: ' was wonderful . i really loved it . it was an amazing film .',
    endedWithEos: true,
  });
  assert.ok(whole > 0.9 && whole < 1.2, String(whole));
  assert.ok(whole > goldReward(ok));
  assert.equal(goldReward({ prompt: 'i', completion: ' hated it .', endedWithEos: true }), -3 / 10);
  assert.deepEqual(distinctSentences('the plot', ' was dull . the plot was dull .'), ['the plot was dull']);
  assert.equal(wordCount(' was superb .'), 2);
  assert.ok(isGrammatical(ok));
});

test('annotators: verbosity bias and a Bayes rate between 0.5 and 1', () => {
  const short = { gold: 1, words: 3 };
  const long = { gold: 1, words: 8 };
  assert.ok(preferenceProbability(long, short) > 0.85);
  assert.equal(preferenceProbability(short, short), 0.5);
  const rate = bayesRate([
    [short, long],
    [
      { gold: 2, words: 3 },
      { gold: -1, words: 3 },
    ],
  ]);
  assert.ok(rate > 0.5 && rate < 1);
});

test('prompts stop before the first sentiment word', () => {
  const rng = new Rng(5);
  for (let i = 0; i < 500; i++) {
    const words = sampleReview(rng);
    const { prompt, completion } = splitReview(rng, words);
    assert.equal(`${prompt}${completion}`, words.join(' '));
    assert.ok(completion.startsWith(' '));
    assert.doesNotMatch(prompt, /\b(superb|loved|hated|awful|great)\b/);
  }
});

test('synthesis is seeded and sized as asked', () => {
  const opts = {
    seed: 3,
    sftExamples: 200,
    prompts: 50,
    evalPrompts: 20,
    preferencePairs: 100,
    preferenceEvalPairs: 50,
  };
  const a = synthesizeSentimentTask(opts);
  const b = synthesizeSentimentTask(opts);
  assert.deepEqual(a.files, b.files);
  assert.notDeepEqual(synthesizeSentimentTask({ ...opts, seed: 4 }).files['sft.jsonl'], a.files['sft.jsonl']);
  const lines = (name: string): string[] => (a.files[name] ?? '').trim().split('\n');
  assert.equal(lines('sft.jsonl').length, 200);
  assert.equal(lines('prompts.jsonl').length, 50);
  assert.equal(lines('eval.jsonl').length, 20);
  assert.equal(lines('preferences.jsonl').length, 100);
  const pair = JSON.parse(lines('preferences.jsonl')[0] ?? '{}') as Record<string, string>;
  assert.deepEqual(Object.keys(pair), ['prompt', 'chosen', 'rejected']);
  const summary = a.summary as { bayesRate: { train: number }; sft: { meanGold: number } };
  assert.ok(summary.bayesRate.train > 0.6 && summary.bayesRate.train < 1);
  assert.ok(Math.abs(summary.sft.meanGold) < 1, 'reviews are balanced between positive and negative');
});
