import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '@rlhf/ml-engine';
import { fitLengthPenalty, fitLengthPenaltyOnSamples, minGrammaticalFitSamples } from './length-penalty.js';
import { buildPair } from './pairs.js';

const judged = (scores: number[], texts?: string[]) => ({
  responses: texts ?? scores.map((_, i) => `r${i}`),
  scores,
  key: (r: string) => r,
});

test('maxMin pairs best with worst; ties and identical texts are dropped', () => {
  const p = buildPair(judged([0.1, 0.9, -0.4, 0.3]), 'maxMin', new Rng(1));
  assert.deepEqual(p && [p.chosen, p.rejected, p.margin], ['r1', 'r2', 0.9 - -0.4]);
  assert.equal(buildPair(judged([0.5, 0.5, 0.5]), 'maxMin', new Rng(1)), null);
  assert.equal(buildPair(judged([1, 0], ['same', 'same']), 'maxMin', new Rng(1)), null);
});

test('maxRandom keeps the best as chosen; random orders its two picks by score', () => {
  const rng = new Rng(2);
  for (let i = 0; i < 50; i++) {
    const p = buildPair(judged([0.1, 0.9, -0.4, 0.3]), 'maxRandom', rng);
    assert.equal(p?.chosen, 'r1');
    const q = buildPair(judged([0.1, 0.9, -0.4, 0.3]), 'random', rng);
    assert.ok(q && q.margin > 0);
  }
});

test('the length-penalty fit recovers the length coefficient', () => {
  const rng = new Rng(3);
  const gold: number[] = [];
  const chars: number[] = [];
  const reward: number[] = [];
  for (let i = 0; i < 500; i++) {
    const g = rng.normal();
    const c = 20 + rng.int(80);
    gold.push(g);
    chars.push(c);
    reward.push(0.5 + 2 * g + 0.01 * c + 0.05 * rng.normal());
  }
  const fit = fitLengthPenalty(reward, gold, chars);
  assert.ok(Math.abs(fit.lambda - 0.01) < 0.001, `lambda ${fit.lambda}`);
  assert.ok(Math.abs(fit.goldCoefficient - 2) < 0.05);
  // Noise sd 0.05 against a signal of variance 4 + 0.01^2 * 533: R^2 about 0.9994.
  assert.ok(fit.r2 > 0.999 && fit.r2 < 1, `r2 ${fit.r2}`);
  const noisy = fitLengthPenalty(
    reward.map((r) => r + 2 * rng.normal()),
    gold,
    chars,
  );
  assert.ok(noisy.r2 > 0.3 && noisy.r2 < 0.7, `r2 ${noisy.r2} with noise as large as the signal`);
  assert.equal(
    fitLengthPenalty(
      reward.map((r, i) => r - 0.02 * (chars[i] as number)),
      gold,
      chars,
    ).lambda,
    0,
    'a negative length effect gives no penalty',
  );
});

test('the fit still finds the length effect when gold is constant', () => {
  const chars = [10, 20, 30, 40, 50];
  const fit = fitLengthPenalty(
    chars.map((c) => 1 + 0.02 * c),
    chars.map(() => -2),
    chars,
  );
  assert.ok(Math.abs(fit.lambda - 0.02) < 1e-6, `lambda ${fit.lambda}`);
});

test('the fit runs over grammatical samples: the gold gate of broken (long) samples does not inflate lambda', () => {
  const rng = new Rng(4);
  const samples = [];
  for (let i = 0; i < 400; i++) {
    const grammatical = i % 4 !== 0;
    const chars = grammatical ? 10 + rng.int(60) : 60 + rng.int(100);
    const g = grammatical ? rng.normal() : -2;
    // The RM scores a broken sample by its text (here: like an average review of its length), not by the gate.
    const reward = 0.5 + 2 * (grammatical ? g : 0) + 0.01 * chars + 0.05 * rng.normal();
    samples.push({ reward, gold: g, chars, grammatical });
  }
  const fit = fitLengthPenaltyOnSamples(samples);
  assert.equal(fit.over, 'grammatical');
  assert.equal(fit.samples, 300);
  assert.ok(Math.abs(fit.lambda - 0.01) < 0.001, `lambda ${fit.lambda}`);
  const naive = fitLengthPenalty(
    samples.map((s) => s.reward),
    samples.map((s) => s.gold),
    samples.map((s) => s.chars),
  );
  assert.ok(naive.lambda > 0.015, `over every sample the gate inflates lambda to ${naive.lambda}`);
  // Too few grammatical samples to fit on their own: every sample is used.
  const few = samples.map((s, i) => ({ ...s, grammatical: s.grammatical && i < minGrammaticalFitSamples }));
  const fallback = fitLengthPenaltyOnSamples(few);
  assert.equal(fallback.over, 'all');
  assert.equal(fallback.samples, 400);
});
