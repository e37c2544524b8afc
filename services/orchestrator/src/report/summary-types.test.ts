import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bestIterationOf, type RewardPoint, totalSeconds } from '@rlhf/workflow';
import { demoSummary } from '../../test/fixtures/demo-summary.js';

const pt = (
  iteration: number,
  proxyReward: number | null,
  goldReward: number | null = null,
): RewardPoint => ({
  iteration,
  proxyReward,
  goldReward,
});
const run = (initial: RewardPoint, ...iterations: RewardPoint[]) => ({ initial, iterations });

test('best iteration is the highest proxy (validation) reward, even if gold says otherwise', () => {
  assert.equal(bestIterationOf(run(pt(0, 0.1, 0.0), pt(1, 0.5, 2.0), pt(2, 0.9, 1.0), pt(3, 0.7, 3.0))), 2);
  // The demo summary: iteration 2 has the top proxy reward although iteration 3 has the top gold.
  assert.equal(bestIterationOf(demoSummary()), 2);
});

test('the initial policy can be the best', () => {
  assert.equal(bestIterationOf(run(pt(0, 1.0), pt(1, 0.5), pt(2, 0.2))), 0);
});

test('ties go to the earlier iteration', () => {
  assert.equal(bestIterationOf(run(pt(0, 0.1), pt(1, 0.8), pt(2, 0.8), pt(3, 0.8))), 1);
  assert.equal(bestIterationOf(run(pt(0, 0.8), pt(1, 0.8))), 0);
  // Order of the list does not matter, the iteration number does.
  assert.equal(bestIterationOf(run(pt(0, 0), pt(3, 0.8), pt(1, 0.8))), 1);
});

test('null proxy rewards are skipped; gold decides only when no proxy reward exists', () => {
  assert.equal(bestIterationOf(run(pt(0, null, 5), pt(1, 0.3, 0), pt(2, null, 9))), 1);
  assert.equal(bestIterationOf(run(pt(0, null, 0.1), pt(1, null, 2.0), pt(2, null, 1.0))), 1);
  assert.equal(bestIterationOf(run(pt(0, null, null), pt(1, null, null))), null);
  assert.equal(bestIterationOf(run(pt(0, null, null))), null);
});

test('non-finite values count as missing', () => {
  assert.equal(bestIterationOf(run(pt(0, 0.2), pt(1, Number.NaN), pt(2, Number.POSITIVE_INFINITY))), 0);
  assert.equal(bestIterationOf(run(pt(0, Number.NaN, 1), pt(1, Number.NaN, 3))), 1);
});

test('totalSeconds sums the stages and ignores non-finite entries', () => {
  assert.equal(totalSeconds({ generate: 1.5, judge: 0.5, train: 2 }), 4);
  assert.equal(totalSeconds({ generate: 1, judge: Number.NaN }), 1);
  assert.equal(totalSeconds({}), 0);
});
