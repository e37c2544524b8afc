/**
 * Models through the artifact store and a real nats-server: publish a model directory, load it by URI,
 * share one load between concurrent callers, refuse the wrong head, and reload after a new version.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { initWeights, parseLlamaConfig, Rng, saveModelDir, trainBpe } from '@rlhf/ml-engine';
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  createLogger,
  type NatsConnection,
  RlhfError,
} from '@rlhf/platform';
import { natsForTests, type TestNats } from '@rlhf/platform/testing';
import { modelVersion, publishModelDir } from './model-artifacts.js';
import { ModelCache } from './model-cache.js';

let server: TestNats;
let nc: NatsConnection;
let dir: string;

before(async () => {
  server = await natsForTests();
  nc = await connectNats({
    url: server.url,
    name: 'model-cache-test',
    logger: createLogger('test', { level: 'warn' }),
  });
  dir = await mkdtemp(join(tmpdir(), 'rlhf-kit-'));
});
after(async () => {
  await nc?.close();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function makeModel(
  name: string,
  seed: number,
  head: 'lm' | 'scalar',
  options: { inlineMaxBytes?: number } = {},
): Promise<string> {
  const tokenizerJson = trainBpe(['the film was great .', 'the film was dull .'], { vocabSize: 270 });
  const config = parseLlamaConfig({
    architectures: [head === 'lm' ? 'LlamaForCausalLM' : 'LlamaForSequenceClassification'],
    hidden_size: 16,
    intermediate_size: 32,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    num_hidden_layers: 1,
    vocab_size: 270,
    max_position_embeddings: 32,
  });
  const out = join(dir, name);
  await saveModelDir(out, { config, tokenizerJson, weights: initWeights(config, new Rng(seed)) }, options);
  return out;
}

test('publish, load by nats-obj URI, share loads, check the head, reload on a new version', async () => {
  const store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
  const uri = `nats-obj://rlhf-test-models/policies/p${Date.now()}`;
  const v1 = await publishModelDir(store, await makeModel('a', 1, 'lm'), uri);
  assert.equal(await modelVersion(store, uri), v1);
  const cache = new ModelCache({ store, cacheDir: join(dir, 'cache'), recheckMs: 0 });
  const [x, y] = await Promise.all([cache.get(uri, 'lm'), cache.get(uri, 'lm')]);
  assert.equal(x, y, 'one load for concurrent callers');
  assert.equal(x.version, v1);
  await assert.rejects(
    cache.get(uri, 'scalar'),
    (e: unknown) => e instanceof RlhfError && e.code === 'FAILED_PRECONDITION' && e.field === 'model.uri',
  );

  const v2 = await publishModelDir(store, await makeModel('b', 2, 'lm'), uri);
  assert.notEqual(v2, v1);
  const z = await cache.get(uri, 'lm');
  assert.equal(z.version, v2, 'a new digest is loaded again');
  assert.notDeepEqual(z.model.weights.get('model.norm.weight'), undefined);

  await assert.rejects(
    cache.get('nats-obj://rlhf-test-models/nothing-here', 'lm'),
    (e: unknown) => e instanceof RlhfError && e.code === 'NOT_FOUND',
  );
  await cache.close();
});

test('file:// model directories load in place', async () => {
  const store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
  const local = await makeModel('c', 3, 'scalar');
  const cache = new ModelCache({ store, cacheDir: join(dir, 'cache2') });
  const m = await cache.get(`file://${local}`, 'scalar');
  assert.equal(m.model.dir, local);
  await cache.close();
});

test('an evicted or replaced model finishes the calls running on it, then is released', async () => {
  const store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
  const cache = new ModelCache({ store, cacheDir: join(dir, 'cache3'), maxModels: 1, recheckMs: 0 });
  const a = await cache.get(`file://${await makeModel('evict-a', 4, 'lm')}`, 'lm');
  const feeds = {
    input_ids: { data: BigInt64Array.from([1n, 2n]), dims: [1, 2] },
    attention_mask: { data: BigInt64Array.from([1n, 1n]), dims: [1, 2] },
    position_ids: { data: BigInt64Array.from([0n, 1n]), dims: [1, 2] },
    ...Object.fromEntries(
      a.session.inputNames
        .filter((n) => n.startsWith('past_key_values'))
        .map((n) => [n, { data: new Float32Array(0), dims: [1, 1, 0, 8] }]),
    ),
  };
  const before = await a.session.run(feeds, ['logits']);
  // A call holds a; loading b evicts a (one model at most), and a keeps serving that call.
  const release = a.session.hold();
  const b = await cache.get(`file://${await makeModel('evict-b', 5, 'lm')}`, 'lm');
  assert.equal(a.session.isRetired, true);
  assert.deepEqual((await a.session.run(feeds, ['logits'])).logits?.data, before.logits?.data);
  release();
  await new Promise((r) => setImmediate(r));
  await assert.rejects(
    a.session.run(feeds, ['logits']),
    (e: unknown) => e instanceof RlhfError && e.code === 'UNAVAILABLE',
  );
  // Nothing holds b: replacing it by a new version releases it at once.
  const uri = `nats-obj://rlhf-test-models/policies/evict${Date.now()}`;
  await publishModelDir(store, await makeModel('evict-c', 6, 'lm'), uri);
  const c1 = await cache.get(uri, 'lm');
  assert.equal(b.session.isRetired, true);
  await publishModelDir(store, await makeModel('evict-d', 7, 'lm'), uri);
  const c2 = await cache.get(uri, 'lm');
  assert.notEqual(c2, c1);
  await new Promise((r) => setImmediate(r));
  await assert.rejects(c1.session.run(feeds, ['logits']), (e: unknown) => e instanceof RlhfError);
  assert.equal((await c2.session.run(feeds, ['logits'])).logits?.dims.join(','), '1,2,270');
  await cache.close();
});

test('a model with its weights in model.onnx.data serves through the store as its inline twin does', async () => {
  const store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
  const cache = new ModelCache({ store, cacheDir: join(dir, 'cache4'), maxModels: 2 });
  const uri = `nats-obj://rlhf-test-models/policies/external${Date.now()}`;
  // A threshold of 0 bytes writes this small model as a model above 1 GiB is written.
  await publishModelDir(store, await makeModel('external', 8, 'lm', { inlineMaxBytes: 0 }), uri);
  const external = await cache.get(uri, 'lm');
  assert.ok((await readdir(external.model.dir)).includes('model.onnx.data'));
  const inline = await cache.get(`file://${await makeModel('inline', 8, 'lm')}`, 'lm');
  const feeds = {
    input_ids: { data: BigInt64Array.from([1n, 2n]), dims: [1, 2] },
    attention_mask: { data: BigInt64Array.from([1n, 1n]), dims: [1, 2] },
    position_ids: { data: BigInt64Array.from([0n, 1n]), dims: [1, 2] },
    ...Object.fromEntries(
      external.session.inputNames
        .filter((n) => n.startsWith('past_key_values'))
        .map((n) => [n, { data: new Float32Array(0), dims: [1, 1, 0, 8] }]),
    ),
  };
  assert.deepEqual(
    (await external.session.run(feeds, ['logits'])).logits?.data,
    (await inline.session.run(feeds, ['logits'])).logits?.data,
  );
  await cache.close();
});
