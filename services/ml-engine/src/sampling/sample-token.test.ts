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

/** The float32 softmax of `row`, as the graph's next_token_probs output holds it. */
function softmax32(row: Float32Array): Float32Array {
  const max = Math.max(...row);
  const e = Array.from(row, (x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return Float32Array.from(e, (x) => x / sum);
}

test("temperature 1 with the graph's probabilities: the same draws as from the logits, log-probs within 1e-6", () => {
  const rng = new Rng(12);
  const full = { temperature: 1, topP: 1, topK: 0, greedy: false };
  let same = 0;
  const draws = 20_000;
  for (let d = 0; d < draws; d++) {
    const row = Float32Array.from({ length: 50 }, () => rng.normal() * 3);
    const seed = 1000 + d;
    const fromLogits = sampleToken(row, 0, 50, full, new Rng(seed));
    const fromProbs = sampleToken(row, 0, 50, full, new Rng(seed), { data: softmax32(row), offset: 0 });
    if (fromProbs.token === fromLogits.token) same++;
    const lse = Math.log(row.reduce((a, x) => a + Math.exp(x), 0));
    assert.ok(Math.abs(fromProbs.logprob - ((row[fromProbs.token] as number) - lse)) < 1e-6, `draw ${d}`);
  }
  // They differ only where u falls within float32 rounding of a boundary of the cumulative distribution.
  assert.ok(same >= draws - 2, `${draws - same} of ${draws} draws differ`);
  // The frequencies are the softmax's, read from an offset into a batch of rows.
  const batch = new Float32Array(8);
  batch.set(softmax32(logits), 4);
  const counts = [0, 0, 0, 0];
  const r = new Rng(9);
  for (let i = 0; i < 40_000; i++)
    counts[sampleToken(logits, 0, 4, full, r, { data: batch, offset: 4 }).token]! += 1;
  for (const [i, p] of [0.5, 0.3, 0.15, 0.05].entries()) assert.ok(Math.abs(counts[i]! / 40_000 - p) < 0.01);
});

test("the graph's probabilities: an underflowing token's log-prob comes from the logits; an all-NaN row falls back", () => {
  const full = { temperature: 1, topP: 1, topK: 0, greedy: false };
  // Token 1 is e^-120 as likely as token 0: zero in float32. A draw past token 0's mass is impossible, so
  // force one by giving the probabilities a NaN-free but truncated row: only token 1 positive.
  const row = new Float32Array([0, -120]);
  const got = sampleToken(row, 0, 2, full, new Rng(1), { data: new Float32Array([0, 1e-40]), offset: 0 });
  assert.equal(got.token, 1);
  assert.ok(Math.abs(got.logprob - (-120 - Math.log1p(Math.exp(-120)))) < 1e-9);
  const nan = sampleToken(logits, 0, 4, full, new Rng(3), {
    data: new Float32Array(4).fill(Number.NaN),
    offset: 0,
  });
  assert.deepEqual(nan, sampleToken(logits, 0, 4, full, new Rng(3)));
});
