import assert from 'node:assert/strict';
import { test } from 'node:test';
import { benchEngine } from './engine-bench.js';
import { mediumModel, trainingFlopsPerToken } from './model-bench.js';

test('the quick engine bench yields finite positive figures (no timing is asserted)', async () => {
  const r = await benchEngine({ quick: true });
  const figures = [
    r.gemm.peak,
    ...r.training.flatMap((t) => [t.tokensPerSecond, t.gflops, t.mfu]),
    ...[...r.generation, ...r.decodeLoop].flatMap((g) => [g.cached, g.uncached, g.speedup]),
    ...r.generation.flatMap((g) =>
      g.rowLoop ? [g.rowLoop.tokensPerSecond, g.rowLoop.uncachedTokensPerSecond, g.rowLoop.speedup] : [],
    ),
  ];
  // Batch 1 is timed on the row loop as well, larger batches are not.
  assert.deepEqual(
    r.generation.map((g) => [g.batch, g.rowLoop !== undefined]),
    [
      [1, true],
      [2, false],
    ],
  );
  for (const f of figures) assert.ok(Number.isFinite(f) && f > 0, String(f));
});

test('training FLOPs per token follow 6N + 12 L T d', () => {
  // medium: embedding 512x256 (tied head), 4 layers of q,o 256x256, k,v 128x256, MLP 3x256x688, 2 norms; final norm.
  const params = 512 * 256 + 4 * (2 * 256 * 256 + 2 * 128 * 256 + 3 * 256 * 688 + 2 * 256) + 256;
  assert.equal(trainingFlopsPerToken(mediumModel), 6 * params + 12 * 4 * 128 * 256);
});
