import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../random/rng.js';
import { idsByLogit, sampleToken } from './sample-token.js';

const logits = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);

function frequencies(params: Parameters<typeof sampleToken>[3], n = 40_000): number[] {
  const rng = new Rng(9);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) counts[sampleToken(logits, 0, 4, params, rng).token]! += 1;
  return counts.map((c) => c / n);
}

test('greedy picks the argmax and reports the model log-prob', () => {
  const r = sampleToken(logits, 0, 4, { temperature: 1, topP: 1, topK: 0, greedy: true }, new Rng(1));
  assert.equal(r.token, 0);
  assert.ok(Math.abs(r.logprob - Math.log(0.5)) < 1e-6);
});

test('temperature 1 matches the softmax; top-k and top-p truncate and renormalise', () => {
  const full = frequencies({ temperature: 1, topP: 1, topK: 0, greedy: false });
  for (const [i, p] of [0.5, 0.3, 0.15, 0.05].entries()) {
    assert.ok(Math.abs((full[i] as number) - p) < 0.01, `${i}: ${full[i]}`);
  }
  const k2 = frequencies({ temperature: 1, topP: 1, topK: 2, greedy: false });
  assert.ok(Math.abs((k2[0] as number) - 0.625) < 0.01 && k2[2] === 0 && k2[3] === 0);
  const p08 = frequencies({ temperature: 1, topP: 0.8, topK: 0, greedy: false });
  assert.ok(p08[2] === 0 && p08[3] === 0 && Math.abs((p08[0] as number) - 0.625) < 0.01);
  const cold = frequencies({ temperature: 0.25, topP: 1, topK: 0, greedy: false });
  assert.ok((cold[0] as number) > 0.85);
});

test('same seed, same tokens', () => {
  const params = { temperature: 1, topP: 0.9, topK: 3, greedy: false };
  const a = new Rng(4);
  const b = new Rng(4);
  for (let i = 0; i < 100; i++)
    assert.deepEqual(sampleToken(logits, 0, 4, params, a), sampleToken(logits, 0, 4, params, b));
});

test('top-k/top-p order: the comparator order (logit descending, ties by lower id), ties, signed zeros, infinities and NaN included', () => {
  const rng = new Rng(7);
  const special = [0, -0, 1, -1, 2.5, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-45, -1e-45];
  for (const vocab of [1, 2, 3, 40, 1000]) {
    for (let trial = 0; trial < 60; trial++) {
      const row = new Float32Array(vocab + 3);
      for (let i = 0; i < row.length; i++) {
        const kind = trial % 5;
        row[i] =
          kind === 0
            ? rng.normal() * 5
            : kind === 1
              ? Math.round(rng.normal() * 2) // many exact ties
              : kind === 2
                ? (special[rng.int(special.length)] as number)
                : kind === 3
                  ? rng.normal() * 1e30
                  : rng.uniform() < 0.05
                    ? Number.NaN
                    : rng.normal();
      }
      const want = Array.from({ length: vocab }, (_, i) => i).sort(
        (a, b) => (row[3 + b] as number) - (row[3 + a] as number) || a - b,
      );
      assert.deepEqual(Array.from(idsByLogit(row, 3, vocab)), want, `vocab ${vocab}, trial ${trial}`);
    }
  }
});
