import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bestIterationBy,
  experimentGoals,
  type ResultMetrics,
  renderResults,
  type VariantResult,
} from './results-table.js';

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

test('the goals are read at the goal iteration, means over seeds, whatever the horizon of a and b', () => {
  const rows = [
    // b ran 4 iterations; the goals read the third.
    row(1, 'b', [m(0.3, 0.7, 12, 0.97), m(0.5, 0.8, 12, 0.96), m(0.7, 0.85, 13, 0.96), m(0.1, 0.6, 3, 0.5)]),
    row(2, 'b', [m(0.2, 0.7, 12, 0.95), m(0.4, 0.8, 12, 0.95), m(0.6, 0.8, 11, 0.94)]),
    row(1, 'a', [m(0, 0.5, 20, 0.9), m(-0.5, 0.4, 26, 0.8), m(-1, 0.3, 30, 0.7)]),
    row(2, 'a', [m(0, 0.5, 20, 0.9), m(-0.5, 0.4, 22, 0.8), m(-1, 0.3, 22, 0.7)]),
    row(1, 'g', [m(0.4, 0.8, 12, 0.99), m(0.7, 0.9, 12, 0.99), m(0.9, 0.95, 12, 0.99)]),
    row(2, 'g', [m(0.4, 0.8, 12, 0.99), m(0.7, 0.9, 12, 0.99), m(0.9, 0.95, 12, 0.99)]),
    row(1, 'c', [m(0.3, 0.6, 12, 0.9)]),
    row(2, 'c', [m(0.4, 0.6, 12, 0.9)]),
    row(1, 'o', [m(0.5, 0.8, 12, 0.9)]),
    row(2, 'o', [m(0.5, 0.7, 12, 0.9)]),
  ];
  const goals = Object.fromEntries(experimentGoals(rows, 3).map((g) => [g.goal, g]));
  // 12 words against SFT's 12: 1.00x
  assert.equal(goals["(b) mean length within 0.7x-1.5x of SFT's"]?.met, true);
  assert.equal(goals['(b) >= 95% grammatical']?.measured, '95%');
  assert.equal(goals['(b) >= 95% grammatical']?.met, true);
  assert.equal(goals['(b) gold rises every iteration']?.measured, '0.10 (SFT), 0.25, 0.45, 0.65');
  assert.equal(goals['(b) gold rises every iteration']?.met, true);
  // gain 0.55 of (g)'s 0.8: 69% < 70%
  assert.equal(goals["(b) gold gain over SFT >= 70% of (g)'s"]?.met, false);
  assert.match(goals["(b) gold gain over SFT >= 70% of (g)'s"]?.measured ?? '', /^69%/);
  assert.equal(goals['(b) win rate vs SFT >= 0.80']?.measured, '0.82');
  assert.equal(goals['(b) win rate vs SFT >= 0.80']?.met, true);
  // 0.825 - 0.6 = 0.225 >= 0.2; 0.825 - 0.75 = 0.075 < 0.1
  assert.equal(goals["(b) win rate above (c)'s by >= 0.20"]?.met, true);
  assert.equal(goals["(b) win rate above (o)'s by >= 0.10"]?.met, false);
  // (a): 26 words >= 2 x 12, gold -1 < 0.65, grammatical 0.7 < 0.95
  assert.equal(goals["(a) length >= 2x SFT's, gold and grammatical below (b)'s"]?.met, true);
});

test('a falling (b) iteration or a collapsed length fails its goal; the table stops at the goal iteration', () => {
  const rows = [
    row(1, 'b', [m(0.8, 0.7, 12, 0.95), m(0.7, 0.8, 12, 0.95), m(2.0, 0.9, 3, 0.95), m(2.5, 0.9, 2, 0.95)]),
    row(1, 'c', [m(0.3, 0.6, 12, 0.9)]),
  ];
  const goals = experimentGoals(rows, 3);
  assert.equal(goals.find((g) => g.goal === '(b) gold rises every iteration')?.met, false);
  assert.equal(goals.find((g) => g.goal === "(b) mean length within 0.7x-1.5x of SFT's")?.met, false);
  const md = renderResults(rows, {
    seeds: [1],
    variants: ['b', 'c'],
    header: ['made by a test'],
    goalIteration: 3,
  });
  assert.match(md, /made by a test/);
  assert.match(md, /\| \(c\) offline DPO, annotator pairs \| 3 \| 0\.30 \| 0\.60 \|/);
  assert.match(md, /\| \(b\) online, RM \+ length penalty \| 2 \| 0\.70 \|/);
  assert.doesNotMatch(md, /\| \(b\) online, RM \+ length penalty \| 4 \| 2\.50 \| 0\.90 \| 1\.00 \|/);
  assert.match(md, /\| \(b\) win rate vs SFT >= 0\.80 \| 0\.90 \| met \|/);
  // b ran past the goal iteration: proxy and gold against KL, and which iteration each would pick.
  assert.match(md, /## Past iteration 3: proxy and gold reward against KL/);
  assert.match(md, /\| \(b\) online, RM \+ length penalty \| 4 \| 1\.00 \| - \| 2\.50 \|/);
  assert.match(md, /\| \(b\) online, RM \+ length penalty \| - \/ 4 \|/);
});

test('the best iteration by a metric counts pi_0 as iteration 0 and ties go to the earlier one', () => {
  const r = { ...row(1, 'b', [m(0.5, 0.7, 12, 0.9), m(0.5, 0.7, 12, 0.9), m(0.2, 0.7, 12, 0.9)]) };
  assert.equal(bestIterationBy(r, 'goldReward'), 1);
  const proxied = {
    ...r,
    initial: { ...sft, proxyReward: 3 },
    iterations: r.iterations.map((x, i) => ({ ...x, proxyReward: i })),
  };
  assert.equal(bestIterationBy(proxied, 'proxyReward'), 0);
});
