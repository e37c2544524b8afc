import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type EvalSample, judgeWinRate } from './evaluation.js';

const sample = (proxyReward: number): EvalSample => ({
  prompt: 'p',
  completion: 'c',
  endedWithEos: true,
  logp: 0,
  logpInitial: 0,
  proxyReward,
  gold: null,
  grammatical: null,
  words: 1,
});

test('judge win rate: each sample against the baseline sample at the same index, ties half', () => {
  const policy = [3, 1, 2, 5].map(sample);
  const baseline = [1, 2, 2, 0].map(sample);
  assert.equal(judgeWinRate(policy, baseline), (1 + 0 + 0.5 + 1) / 4);
  assert.equal(judgeWinRate(baseline, policy), (0 + 1 + 0.5 + 0) / 4);
});

test('judge win rate is null without proxy rewards or matching samples', () => {
  assert.equal(judgeWinRate([sample(Number.NaN)], [sample(1)]), null);
  assert.equal(judgeWinRate([sample(1), sample(2)], [sample(1)]), null);
  assert.equal(judgeWinRate([], []), null);
});
