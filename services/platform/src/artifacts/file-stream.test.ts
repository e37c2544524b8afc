import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { copyFileAtomic, fileDigest, streamToFileAtomic } from './file-stream.js';
import { sha256Digest } from './store.js';

test('a streamed copy digests what it writes, as sha256Digest does for the bytes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rlhf-stream-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const data = new Uint8Array(300_000).map((_, i) => (i * 31) % 251);
  await writeFile(join(dir, 'a'), data);
  const expected = { size: data.byteLength, digest: sha256Digest(data) };
  assert.deepEqual(await fileDigest(join(dir, 'a')), expected);
  assert.deepEqual(await copyFileAtomic(join(dir, 'a'), join(dir, 'sub', 'b')), expected);
  assert.deepEqual(new Uint8Array(await readFile(join(dir, 'sub', 'b'))), data);
});

test('a refused or failed stream leaves neither the file nor its temporary sibling', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rlhf-stream-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const chunks = [new Uint8Array([1, 2]), new Uint8Array([3])];
  await assert.rejects(
    streamToFileAtomic(join(dir, 'refused'), chunks, (got) => {
      assert.equal(got.size, 3);
      throw new Error('digest mismatch');
    }),
    /digest mismatch/,
  );
  async function* broken(): AsyncGenerator<Uint8Array> {
    yield new Uint8Array([1]);
    throw new Error('connection lost');
  }
  await assert.rejects(streamToFileAtomic(join(dir, 'broken'), broken()), /connection lost/);
  await assert.rejects(copyFileAtomic(join(dir, 'absent'), join(dir, 'copy')), { code: 'ENOENT' });
  assert.deepEqual(await readdir(dir), []);
});
