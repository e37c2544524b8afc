import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RlhfError } from '../errors.js';
import { FileArtifactStore } from './file-store.js';
import { sha256Digest } from './store.js';

test('file store: atomic put, get, info, list, delete', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rlhf-fs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new FileArtifactStore();
  const uri = `file://${dir}/runs/a/iter-1/generate/shard-0.jsonl`;
  const data = new TextEncoder().encode('{"prompt":"x"}\n');
  const info = await store.put(uri, data);
  assert.equal(info.size, data.byteLength);
  assert.equal(info.digest, sha256Digest(data));
  assert.deepEqual(await store.get(uri), data);
  assert.deepEqual(await store.info(uri), info);
  await store.put(`file://${dir}/runs/a/iter-1/generate/shard-1.jsonl`, data);
  assert.deepEqual(await store.list(`file://${dir}/runs/a/iter-1/generate/shard-`), [
    `file://${dir}/runs/a/iter-1/generate/shard-0.jsonl`,
    `file://${dir}/runs/a/iter-1/generate/shard-1.jsonl`,
  ]);
  // No temporary files are left behind by the atomic writes.
  assert.deepEqual((await readdir(join(dir, 'runs/a/iter-1/generate'))).sort(), [
    'shard-0.jsonl',
    'shard-1.jsonl',
  ]);
  await store.delete(uri);
  assert.equal(await store.info(uri), null);
  await assert.rejects(store.get(uri), (e: unknown) => e instanceof RlhfError && e.code === 'NOT_FOUND');
});
