import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RlhfError } from '../errors.js';
import { DirectoryObjectStore } from './directory-object-store.js';
import { ArtifactRouter } from './router.js';
import { ArtifactSandbox } from './sandbox.js';
import { sha256Digest } from './store.js';

const dir = await mkdtemp(join(tmpdir(), 'rlhf-dirobj-'));
after(() => rm(dir, { recursive: true, force: true }));

test('nats-obj:// keys are files under the root, listed and read back by their URIs', async () => {
  const store = new DirectoryObjectStore(dir);
  const data = new TextEncoder().encode('hello');
  const info = await store.put('nats-obj://bucket/runs/a/x.jsonl', data);
  assert.deepEqual(info, { uri: 'nats-obj://bucket/runs/a/x.jsonl', size: 5, digest: sha256Digest(data) });
  assert.equal(await readFile(join(dir, 'bucket', 'runs', 'a', 'x.jsonl'), 'utf8'), 'hello');
  await store.put('nats-obj://bucket/runs/a/m/manifest.json', data);
  await store.put('nats-obj://bucket/runs/ab/y', data);
  assert.deepEqual(await store.list('nats-obj://bucket/runs/a/'), [
    'nats-obj://bucket/runs/a/m/manifest.json',
    'nats-obj://bucket/runs/a/x.jsonl',
  ]);
  // A key prefix, as the Object Store matches it, not only a directory.
  assert.deepEqual(await store.list('nats-obj://bucket/runs/a'), [
    'nats-obj://bucket/runs/a/m/manifest.json',
    'nats-obj://bucket/runs/a/x.jsonl',
    'nats-obj://bucket/runs/ab/y',
  ]);
  assert.equal((await store.info('nats-obj://bucket/runs/a/x.jsonl'))?.size, 5);
  assert.equal(await store.info('nats-obj://bucket/none'), null);
  await assert.rejects(
    store.get('nats-obj://bucket/none'),
    (e: unknown) =>
      e instanceof RlhfError && e.code === 'NOT_FOUND' && e.message.includes('nats-obj://bucket/none'),
  );
  await store.delete('nats-obj://bucket/runs/a/x.jsonl');
  assert.equal(await store.info('nats-obj://bucket/runs/a/x.jsonl'), null);
});

test('ArtifactRouter without NATS routes nats-obj:// URIs to the directory store it is given', async () => {
  const sandbox = ArtifactSandbox.confined({ roots: [dir], nats: true });
  const objects = new DirectoryObjectStore(join(dir, 'objects'));
  const router = new ArtifactRouter(null, sandbox, objects);
  await router.put('nats-obj://b/k', new TextEncoder().encode('v'));
  assert.equal(new TextDecoder().decode(await objects.get('nats-obj://b/k')), 'v');
  assert.equal((await router.resolve('nats-obj://b/k', 'f', 'read')).scheme, 'nats-obj');
  // Without one, the router still asks for NATS.
  await assert.rejects(new ArtifactRouter(null, sandbox).get('nats-obj://b/k'), /needs a NATS connection/);
});

test('putFile and getFile copy whole files by their URIs; a missing key writes nothing', async () => {
  const store = new DirectoryObjectStore(join(dir, 'streamed'));
  const data = new TextEncoder().encode('weights');
  await writeFile(join(dir, 'weights'), data);
  const put = await store.putFile('nats-obj://bucket/m/model.onnx.data', join(dir, 'weights'));
  assert.deepEqual(put, { uri: 'nats-obj://bucket/m/model.onnx.data', size: 7, digest: sha256Digest(data) });
  assert.deepEqual(await store.getFile('nats-obj://bucket/m/model.onnx.data', join(dir, 'pulled')), put);
  assert.equal(await readFile(join(dir, 'pulled'), 'utf8'), 'weights');
  await assert.rejects(
    store.getFile('nats-obj://bucket/none', join(dir, 'none')),
    (e: unknown) =>
      e instanceof RlhfError && e.code === 'NOT_FOUND' && e.message.includes('nats-obj://bucket/none'),
  );
  assert.equal((await readdir(dir)).includes('none'), false);
});
