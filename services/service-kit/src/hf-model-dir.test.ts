/**
 * hf:// models through the one artifact router and the model download cache: a checkpoint in a Hugging
 * Face cache (offline, so no Hub is involved) is imported once per commit and loaded as an engine model
 * directory; a confined process without a Hugging Face cache refuses the URI, and nothing writes to it.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { exportHfCheckpoint, loadModelDir, saveModelDir } from '@rlhf/ml-engine';
import { tinyModel } from '@rlhf/ml-engine/test-model';
import { ArtifactRouter, ArtifactSandbox, RlhfError } from '@rlhf/platform';
import { modelVersion, publishModelDir } from './model-artifacts.js';
import { acquireModelDir } from './model-download-cache.js';

const commit = '0123456789abcdef0123456789abcdef01234567';
let root = '';
const saved: Record<string, string | undefined> = {};

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'hf-model-dir-'));
  const engineDir = join(root, 'engine');
  await saveModelDir(engineDir, tinyModel());
  // The Hugging Face cache layout: refs/main names the commit, the snapshot links into blobs.
  const repo = join(root, 'hub', 'models--org--tiny');
  const hfDir = join(root, 'checkpoint');
  await exportHfCheckpoint(engineDir, hfDir);
  await mkdir(join(repo, 'refs'), { recursive: true });
  await writeFile(join(repo, 'refs', 'main'), commit);
  const snapshot = join(repo, 'snapshots', commit);
  await mkdir(snapshot, { recursive: true });
  for (const f of await readdir(hfDir)) await symlink(join(hfDir, f), join(snapshot, f));
  for (const k of ['HF_HUB_CACHE', 'HF_HUB_OFFLINE']) saved[k] = process.env[k];
  process.env.HF_HUB_CACHE = join(root, 'hub');
  process.env.HF_HUB_OFFLINE = '1';
});

after(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await rm(root, { recursive: true, force: true });
});

test('an hf:// model is imported once per commit into the model cache and loads as the model it is', async () => {
  const store = new ArtifactRouter(null, ArtifactSandbox.confined({ roots: [], nats: false, hf: true }));
  const cacheDir = join(root, 'models');
  const held = await acquireModelDir(store, 'hf://org/tiny', cacheDir);
  assert.equal(held.dir, join(cacheDir, `hf--org--tiny--${commit}`));
  const loaded = await loadModelDir(held.dir);
  assert.deepEqual(loaded.config.architectures, tinyModel().config.architectures);
  assert.equal(loaded.config.hidden_size, tinyModel().config.hidden_size);
  await held.release();
  assert.equal(await modelVersion(store, 'hf://org/tiny'), `hf:${commit}`);
  // The same commit, by branch or by commit, is the same entry: no second import.
  const again = await acquireModelDir(store, `hf://org/tiny@${commit}`, cacheDir);
  assert.equal(again.dir, held.dir);
  await again.release();
  assert.deepEqual(
    (await readdir(cacheDir)).filter((n) => !n.startsWith('.')),
    [`hf--org--tiny--${commit}`],
  );
  // A revision the cache does not hold, offline, is NOT_FOUND naming the model field.
  await assert.rejects(
    acquireModelDir(store, 'hf://org/tiny@v2', cacheDir),
    (e: unknown) => e instanceof RlhfError && e.code === 'NOT_FOUND' && e.field === 'model.uri',
  );
});

test('hf:// is refused by a process without a Hugging Face cache, as a data file, and as an output', async () => {
  const noHf = new ArtifactRouter(null, ArtifactSandbox.confined({ roots: [], nats: false }));
  await assert.rejects(
    acquireModelDir(noHf, 'hf://org/tiny', join(root, 'models-2')),
    (e: unknown) => e instanceof RlhfError && e.code === 'PERMISSION_DENIED' && /HF_HOME/.test(e.describe()),
  );
  const store = new ArtifactRouter(null, ArtifactSandbox.confined({ roots: [], nats: false, hf: true }));
  await assert.rejects(
    store.get('hf://org/tiny'),
    (e: unknown) =>
      e instanceof RlhfError && e.code === 'INVALID_ARGUMENT' && /rlhf data push/.test(e.describe()),
  );
  for (const write of [
    () => store.put('hf://org/tiny', new Uint8Array(1)),
    () => store.resolve('hf://org/tiny', 'output', 'write'),
    () => publishModelDir(ArtifactRouter.prototype as never, join(root, 'engine'), 'hf://org/tiny'),
  ])
    await assert.rejects(
      write(),
      (e: unknown) => e instanceof RlhfError && e.code === 'INVALID_ARGUMENT' && /read-only/.test(e.message),
    );
});
