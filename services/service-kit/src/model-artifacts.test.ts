/**
 * Saving a model artifact as a standalone model directory, through a real nats-server: the copy loads and
 * matches the original file for file; an existing directory is refused unless overwritten; a missing model
 * and a corrupted file are errors that leave no directory behind.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadModelDir, saveModelDir } from '@rlhf/ml-engine';
import { tinyModel } from '@rlhf/ml-engine/test-model';
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  createLogger,
  type NatsConnection,
} from '@rlhf/platform';
import { natsForTests, type TestNats } from '@rlhf/platform/testing';
import { MODEL_MANIFEST, publishModelDir, saveModelFromArtifact } from './model-artifacts.js';

let server: TestNats;
let nc: NatsConnection;
let store: ArtifactRouter;
let dir: string;
let source: string;
const uri = 'nats-obj://rlhf-test-models/save-test/policy';

before(async () => {
  server = await natsForTests();
  nc = await connectNats({
    url: server.url,
    name: 'model-artifacts-test',
    logger: createLogger('test', { level: 'warn' }),
  });
  store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
  dir = await mkdtemp(join(tmpdir(), 'rlhf-save-model-'));
  source = join(dir, 'source');
  await saveModelDir(source, tinyModel());
  await publishModelDir(store, source, uri);
});
after(async () => {
  await nc?.close();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

const sameFiles = async (a: string, b: string) => {
  for (const name of await readdir(a))
    assert.deepEqual(await readFile(join(b, name)), await readFile(join(a, name)), name);
};

test('a nats-obj model saved to a directory has every file of the original and loads', async () => {
  const out = join(dir, 'saved');
  await saveModelFromArtifact(store, uri, out);
  await sameFiles(source, out);
  assert.ok((await readdir(out)).includes(MODEL_MANIFEST));
  const loaded = await loadModelDir(out);
  assert.deepEqual(loaded.config, tinyModel().config);
});

test('an existing directory is refused unless overwrite, which replaces it whole', async () => {
  const out = join(dir, 'existing');
  await mkdir(out);
  await writeFile(join(out, 'stale.txt'), 'old');
  await assert.rejects(saveModelFromArtifact(store, uri, out), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ALREADY_EXISTS');
    return true;
  });
  assert.deepEqual(await readdir(out), ['stale.txt'], 'untouched after the refusal');
  await saveModelFromArtifact(store, uri, out, { overwrite: true });
  assert.ok(!(await readdir(out)).includes('stale.txt'));
  await sameFiles(source, out);
});

test('a file:// model is copied', async () => {
  const out = join(dir, 'from-file');
  await saveModelFromArtifact(store, `file://${source}`, out);
  await sameFiles(source, out);
});

test('a missing model is NOT_FOUND naming the URI, and nothing is written', async () => {
  const out = join(dir, 'missing');
  await assert.rejects(
    saveModelFromArtifact(store, 'nats-obj://rlhf-test-models/save-test/nothing', out),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'NOT_FOUND');
      assert.match(e.message, /save-test\/nothing/);
      return true;
    },
  );
  assert.ok(!(await readdir(dir)).includes('missing'));
});

test('a file that does not match its manifest digest fails the copy and leaves no directory', async () => {
  const bad = 'nats-obj://rlhf-test-models/save-test/corrupt';
  await publishModelDir(store, source, bad);
  await store.put(`${bad}/config.json`, new TextEncoder().encode('{"hidden_size": 17}'));
  const out = join(dir, 'corrupt');
  await assert.rejects(
    saveModelFromArtifact(store, bad, out),
    /config\.json does not match its manifest digest/,
  );
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n.startsWith('corrupt')),
    [],
    'neither the directory nor a temporary one is left',
  );
});
