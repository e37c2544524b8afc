import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { f32ToBf16, f32ToF16 } from './half-float.js';
import { readHfWeights } from './hf-weights.js';
import { readSafetensors } from './safetensors.js';
import { parseShardSize, planShards, writeShardedSafetensors } from './safetensors-shards.js';

describe('shard sizes', () => {
  it('reads sizes as transformers does: GB is 10^9, GiB 2^30', () => {
    assert.equal(parseShardSize('5GB', 'f'), 5e9);
    assert.equal(parseShardSize('500MB', 'f'), 5e8);
    assert.equal(parseShardSize('2GiB', 'f'), 2 * 2 ** 30);
    assert.equal(parseShardSize('40kB', 'f'), 40_000);
    assert.equal(parseShardSize('1234', 'f'), 1234);
    for (const bad of ['', '0', '-1GB', '5 parsecs', 'GB'])
      assert.throws(() => parseShardSize(bad, '--max-shard-size'), /--max-shard-size must be a size/, bad);
  });

  it('fills shards in order and gives an oversized tensor its own, as save_pretrained does', () => {
    const sizes: Record<string, number> = { a: 40, b: 50, c: 20, big: 300, d: 90, e: 10 };
    const plan = planShards(Object.keys(sizes), (n) => sizes[n] as number, 100);
    // As huggingface_hub's split: the oversized tensor's shard is closed at once, the open one continues.
    assert.deepEqual(plan, [['a', 'b'], ['big'], ['c'], ['d', 'e']]);
  });
});

describe('half-float rounding', () => {
  it('rounds to nearest, ties to even', () => {
    assert.equal(f32ToBf16(1), 0x3f80);
    assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie, down to the even neighbour
    assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie, up to the even neighbour
    assert.equal(f32ToF16(1), 0x3c00);
    assert.equal(f32ToF16(65504), 0x7bff);
    assert.equal(f32ToF16(65520), 0x7c00); // the tie above the largest half rounds to infinity
    assert.equal(f32ToF16(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(f32ToF16(2 ** -25), 0x0000); // tie with zero, to even
    assert.equal(f32ToF16(3 * 2 ** -25), 0x0002);
    assert.equal(f32ToF16(-0), 0x8000);
    assert.ok((f32ToF16(Number.NaN) & 0x7fff) > 0x7c00);
    assert.ok((f32ToBf16(Number.NaN) & 0x7fff) > 0x7f80);
  });
});

describe('sharded writes', () => {
  it('writes shards and an index that readHfWeights reads back, in the chosen dtype', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shards-'));
    try {
      const tensors = new Map([
        ['x.weight', { shape: [4, 8], data: Float32Array.from({ length: 32 }, (_, i) => i / 7) }],
        ['y.weight', { shape: [16], data: Float32Array.from({ length: 16 }, (_, i) => -i / 3) }],
        [
          'z.weight',
          { shape: [2, 4], length: 8, load: async () => Float32Array.from({ length: 8 }, (_, i) => i) },
        ],
      ]);
      const files = await writeShardedSafetensors(dir, tensors, 'BF16', 64);
      // BF16: x takes 64 bytes, a shard of its own; y (32) and z (16) share the second.
      assert.deepEqual(files, [
        'model-00001-of-00002.safetensors',
        'model-00002-of-00002.safetensors',
        'model.safetensors.index.json',
      ]);
      assert.deepEqual((await readdir(dir)).sort(), files);
      const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
      assert.equal(index.metadata.total_size, (32 + 16 + 8) * 2);
      assert.deepEqual(index.weight_map, {
        'x.weight': files[0],
        'y.weight': files[1],
        'z.weight': files[1],
      });
      const back = await readHfWeights(dir);
      assert.equal(back.tensors.get('x.weight')?.dtype, 'BF16');
      assert.deepEqual([...(back.tensors.get('z.weight')?.data ?? [])], [0, 1, 2, 3, 4, 5, 6, 7]);
      const first = await readSafetensors(join(dir, files[0] as string));
      assert.equal(first.metadata.format, 'pt');
      // One shard's worth: a single model.safetensors, no index.
      const single = join(dir, 'single');
      await mkdir(single);
      assert.deepEqual(await writeShardedSafetensors(single, tensors, 'F32', 1e9), ['model.safetensors']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
