/**
 * Whole files into and out of the Object Store by stream, through a real nats-server: an empty file, and
 * one of several read batches (5 MiB: 40 chunks of 128 KiB, the reader asks for 32 at a time), come back
 * byte for byte with the digest the store records; a missing object writes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { NatsConnection } from '@nats-io/transport-node';
import { natsForTests, type TestNats } from '../../test/helpers/nats.js';
import { RlhfError } from '../errors.js';
import { connectNats } from '../nats/connection.js';
import { createLogger } from '../observability/logger.js';
import { NatsObjectArtifactStore } from './object-store.js';
import { sameDigest, sha256Digest } from './store.js';

let server: TestNats;
let nc: NatsConnection;
let dir = '';

before(async () => {
  server = await natsForTests();
  nc = await connectNats({
    url: server.url,
    name: 'object-store-test',
    logger: createLogger('test', { level: 'warn' }),
  });
  dir = await mkdtemp(join(tmpdir(), 'rlhf-obj-file-'));
});
after(async () => {
  await nc?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('putFile and getFile stream whole files through the Object Store', async () => {
  const store = new NatsObjectArtifactStore(nc);
  const large = new Uint8Array(5 * 2 ** 20).map((_, i) => (i * 7) % 256);
  for (const [name, data] of [
    ['empty', new Uint8Array(0)],
    ['large', large],
  ] as const) {
    await writeFile(join(dir, name), data);
    const uri = `nats-obj://rlhf-test-files/streamed/${name}`;
    const put = await store.putFile(uri, join(dir, name));
    assert.equal(put.size, data.byteLength);
    assert.ok(sameDigest(put.digest, sha256Digest(data)), put.digest);
    const got = await store.getFile(uri, join(dir, 'out', name));
    assert.deepEqual(got, put);
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'out', name))), data);
  }
  await assert.rejects(
    store.getFile('nats-obj://rlhf-test-files/streamed/absent', join(dir, 'out', 'absent')),
    (e: unknown) => e instanceof RlhfError && e.code === 'NOT_FOUND',
  );
  assert.deepEqual((await readdir(join(dir, 'out'))).sort(), ['empty', 'large']);
});
