import assert from 'node:assert/strict';
import { test } from 'node:test';
import { experimentGoals, type ResultMetrics, renderResults, type VariantResult } from './results-table.js';

const m = (gold: number, win: number, words: number, gram: number): ResultMetrics => ({
  goldReward: gold,
  winRate: win,
  kl: 1,
  meanLength: words,
  grammaticalRate: gram,
});
const sft = m(0.1, 0.5, 12, 0.97);
const row = (seed: number, variant: string, iterations: ResultMetrics[]): VariantResult => ({
  seed,
  variant,
  rmAccuracy: 0.9,
  pmAccuracy: null,
  bayesRate: 0.91,
  lambda: 0.01,
  seconds: 10,
  initial: sft,
  iterations,
});

test('the goals are checked on the last iteration, means over seeds', () => {
  const rows = [
    row(1, 'b', [m(0.8, 0.7, 12, 0.95), m(1.5, 0.8, 12, 0.95), m(2.0, 0.9, 12, 0.95)]),
    row(2, 'b', [m(0.6, 0.7, 12, 0.95), m(1.3, 0.8, 12, 0.95), m(1.8, 0.8, 12, 0.93)]),
    row(1, 'a', [m(0, 0.5, 20, 0.9), m(-0.5, 0.4, 26, 0.8), m(-1, 0.3, 30, 0.7)]),
    row(2, 'a', [m(0, 0.5, 20, 0.9), m(-0.5, 0.4, 22, 0.8), m(-1, 0.3, 22, 0.7)]),
    row(1, 'c', [m(0.3, 0.6, 12, 0.9)]),
    row(2, 'c', [m(0.4, 0.6, 12, 0.9)]),
    row(1, 'o', [m(1.5, 0.8, 12, 0.9)]),
    row(2, 'o', [m(1.5, 0.8, 12, 0.9)]),
  ];
  const goals = Object.fromEntries(experimentGoals(rows).map((g) => [g.goal, g]));
  assert.equal(goals['(b) gold >= 1.8']?.measured, '1.90');
  assert.equal(goals['(b) gold >= 1.8']?.met, true);
  assert.equal(goals['(b) win rate vs SFT >= 0.82']?.met, true);
  assert.equal(goals['(b) >= 90% grammatical']?.measured, '94%');
  // gold 1.90 - 0.35 = 1.55 >= 1.5 and win 0.85 - 0.6 = 0.25 >= 0.25
  assert.equal(goals['(b) beats (c) by >= 1.5 gold and >= 0.25 win rate']?.met, true);
  // 1.90 - 1.5 = 0.40 < 0.5
  assert.equal(goals['(b) beats (o) by >= 0.5 gold']?.met, false);
  assert.equal(goals['gold rises every iteration in (b)']?.measured, '0.10 (SFT), 0.70, 1.40, 1.90');
  assert.equal(goals['gold rises every iteration in (b)']?.met, true);
  // (a) at 26 words, 2x SFT's 12 is 24: met, and gold -1 < 0.1
  assert.equal(goals['(a) ends at >= 2x SFT length with gold below SFT']?.met, true);
});

test('a falling (b) iteration fails the rising goal; the table lists offline variants at the last online iteration', () => {
  const rows = [
    row(1, 'b', [m(0.8, 0.7, 12, 0.95), m(0.7, 0.8, 12, 0.95), m(2.0, 0.9, 12, 0.95)]),
    row(1, 'c', [m(0.3, 0.6, 12, 0.9)]),
  ];
  const rising = experimentGoals(rows).find((g) => g.goal === 'gold rises every iteration in (b)');
  assert.equal(rising?.met, false);
  const md = renderResults(rows, { seeds: [1], variants: ['b', 'c'], header: ['made by a test'] });
  assert.match(md, /made by a test/);
  assert.match(md, /\| \(c\) offline DPO, annotator pairs \| 3 \| 0\.30 \| 0\.60 \|/);
  assert.match(md, /\| \(b\) online, RM \+ length penalty \| 2 \| 0\.70 \|/);
  assert.match(md, /\| \(b\) gold >= 1\.8 \| 2\.00 \| met \|/);
});
