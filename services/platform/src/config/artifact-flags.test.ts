import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RlhfError } from '../errors.js';
import { resolveServeOptions, serveFlags } from './serve-flags.js';

test('--artifact-root repeats; RLHF_ARTIFACT_ROOTS is colon-separated; a flag wins; none by default', () => {
  assert.deepEqual(resolveServeOptions({}, {}).artifactRoots, []);
  assert.deepEqual(resolveServeOptions({ artifactRoot: ['/data/a', '/data/b'] }, {}).artifactRoots, [
    '/data/a',
    '/data/b',
  ]);
  assert.deepEqual(resolveServeOptions({}, { RLHF_ARTIFACT_ROOTS: '/x:/y' }).artifactRoots, ['/x', '/y']);
  assert.deepEqual(
    resolveServeOptions({ artifactRoot: ['/flag'] }, { RLHF_ARTIFACT_ROOTS: '/env' }).artifactRoots,
    ['/flag'],
  );
  assert.throws(
    () => resolveServeOptions({ artifactRoot: ['data'] }, {}),
    (e: unknown) => e instanceof RlhfError && e.field === '--artifact-root' && /absolute/.test(e.message),
  );
  const spec = serveFlags.find((f) => f.name === 'artifact-root');
  assert.ok(spec?.repeatable);
  assert.match(spec.description, /without it the service takes no file:\/\/ URIs/);
});

test('--model-cache-max-gb sets the download cache limit (default 20 GiB)', () => {
  assert.equal(resolveServeOptions({}, {}).modelCacheMaxBytes, 20 * 1024 ** 3);
  assert.equal(resolveServeOptions({ modelCacheMaxGb: '0.5' }, {}).modelCacheMaxBytes, 512 * 1024 ** 2);
  assert.equal(resolveServeOptions({}, { RLHF_MODEL_CACHE_MAX_GB: '2' }).modelCacheMaxBytes, 2 * 1024 ** 3);
  assert.throws(() => resolveServeOptions({ modelCacheMaxGb: '-1' }, {}), RlhfError);
});
