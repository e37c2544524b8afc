import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startS3Server, type TestS3Server } from '../../test/helpers/s3-server.js';
import { RlhfError } from '../errors.js';
import { ArtifactRouter } from './router.js';
import { S3ArtifactStore, s3ConfigFromEnv, s3ConfiguredInEnv } from './s3-store.js';
import { ArtifactSandbox } from './sandbox.js';
import { sha256Digest } from './store.js';

let s3: TestS3Server;
before(async () => {
  s3 = await startS3Server(['rlhf-data']);
});
after(async () => {
  await s3.stop();
});

test('s3:// objects are written, read, listed and deleted on a real S3-protocol server', async () => {
  const store = new S3ArtifactStore(s3.config);
  const data = new TextEncoder().encode('{"prompt":"a"}\n{"prompt":"b"}\n');
  const put = await store.put('s3://rlhf-data/sets/prompts.jsonl', data);
  assert.equal(put.size, data.byteLength);
  assert.deepEqual(await store.get('s3://rlhf-data/sets/prompts.jsonl'), data);
  assert.deepEqual(await store.info('s3://rlhf-data/sets/prompts.jsonl'), put);
  await store.put('s3://rlhf-data/sets/eval.jsonl', new Uint8Array([1, 2, 3]));
  await store.put('s3://rlhf-data/other/x', new Uint8Array([4]));
  assert.deepEqual(await store.list('s3://rlhf-data/sets/'), [
    's3://rlhf-data/sets/eval.jsonl',
    's3://rlhf-data/sets/prompts.jsonl',
  ]);
  await store.delete('s3://rlhf-data/sets/eval.jsonl');
  assert.equal(await store.info('s3://rlhf-data/sets/eval.jsonl'), null);
  await assert.rejects(store.get('s3://rlhf-data/sets/eval.jsonl'), (e: unknown) => {
    return e instanceof RlhfError && e.code === 'NOT_FOUND' && /sets\/eval\.jsonl/.test(e.message);
  });
  store.close();
});

test('a missing bucket is NOT_FOUND with the fix; wrong credentials are PERMISSION_DENIED', async () => {
  const store = new S3ArtifactStore(s3.config);
  await assert.rejects(store.put('s3://no-such-bucket/k', new Uint8Array([1])), (e: unknown) => {
    return e instanceof RlhfError && e.code === 'NOT_FOUND' && /create the bucket/.test(e.describe());
  });
  store.close();
  const wrong = new S3ArtifactStore({
    ...s3.config,
    credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'not-the-secret' },
  });
  await assert.rejects(wrong.put('s3://rlhf-data/k', new Uint8Array([1])), (e: unknown) => {
    return e instanceof RlhfError && e.code === 'PERMISSION_DENIED' && /AWS_ACCESS_KEY_ID/.test(e.describe());
  });
  wrong.close();
});

test('the S3 settings come from the standard AWS variables; path-style follows a custom endpoint', () => {
  assert.deepEqual(s3ConfigFromEnv({}), { region: 'us-east-1', forcePathStyle: false });
  assert.deepEqual(
    s3ConfigFromEnv({ AWS_ENDPOINT_URL: 'http://minio:9000', AWS_DEFAULT_REGION: 'eu-west-1' }),
    {
      endpoint: 'http://minio:9000',
      region: 'eu-west-1',
      forcePathStyle: true,
    },
  );
  assert.equal(
    s3ConfigFromEnv({ AWS_ENDPOINT_URL_S3: 'http://gw', RLHF_S3_PATH_STYLE: 'false' }).forcePathStyle,
    false,
  );
  assert.throws(
    () => s3ConfigFromEnv({ RLHF_S3_PATH_STYLE: 'yes' }),
    (e: unknown) => e instanceof RlhfError && /^RLHF_S3_PATH_STYLE: /.test(e.describe()),
  );
  assert.equal(s3ConfiguredInEnv({}), false);
  assert.equal(s3ConfiguredInEnv({ AWS_REGION: 'us-east-1' }), true);
});

test('the router sends s3:// to the S3 store; a service sandbox without S3 refuses it', async () => {
  const store = new S3ArtifactStore(s3.config);
  const router = new ArtifactRouter(null, ArtifactSandbox.unrestricted(), undefined, store);
  await router.put('s3://rlhf-data/routed.jsonl', new Uint8Array([7, 8]));
  assert.deepEqual(await router.get('s3://rlhf-data/routed.jsonl'), new Uint8Array([7, 8]));
  const confined = new ArtifactRouter(
    null,
    ArtifactSandbox.confined({ roots: [], nats: false }),
    undefined,
    store,
  );
  await assert.rejects(confined.get('s3://rlhf-data/routed.jsonl'), (e: unknown) => {
    return e instanceof RlhfError && e.code === 'PERMISSION_DENIED' && /AWS_REGION/.test(e.describe());
  });
  const allowed = new ArtifactRouter(
    null,
    ArtifactSandbox.confined({ roots: [], nats: false, s3: true }),
    undefined,
    store,
  );
  assert.deepEqual(await allowed.get('s3://rlhf-data/routed.jsonl'), new Uint8Array([7, 8]));
  store.close();
});

test('putFile and getFile stream a file; a damaged object leaves nothing at the path', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rlhf-s3-file-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new S3ArtifactStore(s3.config);
  t.after(() => store.close());
  const data = new Uint8Array(200_000).map((_, i) => i % 253);
  await writeFile(join(dir, 'weights'), data);
  const put = await store.putFile('s3://rlhf-data/files/weights', join(dir, 'weights'));
  assert.deepEqual(put, {
    uri: 's3://rlhf-data/files/weights',
    size: data.byteLength,
    digest: sha256Digest(data),
  });
  assert.deepEqual(await store.info('s3://rlhf-data/files/weights'), put);
  const got = await store.getFile('s3://rlhf-data/files/weights', join(dir, 'out', 'weights'));
  assert.deepEqual(got, put);
  assert.deepEqual(new Uint8Array(await readFile(join(dir, 'out', 'weights'))), data);

  // An object whose recorded digest does not match its bytes, as a damaged copy would be.
  const { credentials, ...config } = s3.config;
  const raw = new S3Client({ ...config, ...(credentials ? { credentials } : {}) });
  t.after(() => raw.destroy());
  await raw.send(
    new PutObjectCommand({
      Bucket: 'rlhf-data',
      Key: 'files/damaged',
      Body: data,
      Metadata: { sha256: sha256Digest(new Uint8Array([1])) },
    }),
  );
  await assert.rejects(
    store.getFile('s3://rlhf-data/files/damaged', join(dir, 'out', 'damaged')),
    (e: unknown) => {
      return (
        e instanceof RlhfError &&
        e.code === 'INTERNAL' &&
        /files\/damaged failed its digest check/.test(e.message)
      );
    },
  );
  await assert.rejects(
    store.getFile('s3://rlhf-data/files/absent', join(dir, 'out', 'absent')),
    (e: unknown) => {
      return e instanceof RlhfError && e.code === 'NOT_FOUND';
    },
  );
  assert.deepEqual(await readdir(join(dir, 'out')), ['weights']);
});
