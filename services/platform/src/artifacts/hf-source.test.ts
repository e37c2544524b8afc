import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RlhfError } from '../errors.js';
import { hfCacheDir, isCheckpointFile, parseHfUri, resolveHfModel } from './hf-source.js';

test('hf:// URIs name a repository and an optional revision', () => {
  assert.deepEqual(parseHfUri('hf://HuggingFaceTB/SmolLM2-135M'), {
    repo: 'HuggingFaceTB/SmolLM2-135M',
    revision: 'main',
  });
  assert.deepEqual(parseHfUri('hf://org/name@refs/pr/1'), { repo: 'org/name', revision: 'refs/pr/1' });
  for (const bad of [
    'hf://name',
    'hf://a/b/c',
    'hf://org/..',
    'hf://org/name@',
    'hf://org/name@a..b',
    's3://a/b',
  ]) {
    assert.throws(
      () => parseHfUri(bad, '--from'),
      (e: unknown) => e instanceof RlhfError && /^--from: .*hf:\/\/<org>\/<name>/.test(e.describe()),
      bad,
    );
  }
});

test('the cache directory follows HF_HUB_CACHE, then HF_HOME', () => {
  assert.equal(hfCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }), '/c');
  assert.equal(hfCacheDir({ HF_HOME: '/h' }), '/h/hub');
  assert.match(hfCacheDir({}), /\.cache\/huggingface\/hub$/);
});

test('only the files the import reads are fetched', () => {
  for (const f of ['config.json', 'tokenizer.json', 'model.safetensors', 'model-00001-of-00002.safetensors'])
    assert.ok(isCheckpointFile(f), f);
  for (const f of ['pytorch_model.bin', 'onnx/model.onnx', 'README.md', 'model.safetensors.tmp'])
    assert.ok(!isCheckpointFile(f), f);
});

test('offline, a cached snapshot is found through refs; an incomplete one is not', async () => {
  const cache = await mkdtemp(join(tmpdir(), 'hf-cache-'));
  try {
    const commit = '0123456789abcdef0123456789abcdef01234567';
    const repoDir = join(cache, 'models--org--tiny');
    const snapshot = join(repoDir, 'snapshots', commit);
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await mkdir(snapshot, { recursive: true });
    await writeFile(join(repoDir, 'refs', 'main'), commit);
    await writeFile(join(snapshot, 'config.json'), '{}');
    const offline = { cacheDir: cache, offline: true };
    await assert.rejects(resolveHfModel('hf://org/tiny', '--from', offline), (e: unknown) => {
      return e instanceof RlhfError && e.code === 'NOT_FOUND' && /HF_HUB_OFFLINE/.test(e.describe());
    });
    await writeFile(join(snapshot, 'model.safetensors'), 'weights');
    assert.equal(await resolveHfModel('hf://org/tiny', '--from', offline), snapshot);
    assert.equal(await resolveHfModel(`hf://org/tiny@${commit}`, '--from', offline), snapshot);
    await assert.rejects(
      resolveHfModel('hf://org/tiny@v2', '--from', offline),
      /not in the Hugging Face cache/,
    );
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
});
