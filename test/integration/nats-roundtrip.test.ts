/**
 * A real nats-server (NATS_URL, or one started for this file): the work-queue contract (publish with a
 * dedup id, pull, ack, redelivery after nak), and an Object Store round trip of a 5 MB artifact whose digest
 * is checked.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  createLogger,
  ensureStreams,
  ensureWorkConsumer,
  type JetStreamContext,
  type NatsConnection,
  openJetStream,
  openStateKv,
  publishWork,
  sha256Digest,
  shardMsgId,
  streams,
  workConsumerName,
  workSubject,
} from '@rlhf/platform';
import { natsForTests, type TestNats } from '@rlhf/platform/testing';

let server: TestNats;
let nc: NatsConnection;
let ctx: JetStreamContext;
// Unique names so the test also runs against a shared NATS_URL without touching other data.
const run = `t${randomBytes(4).toString('hex')}`;

before(async () => {
  server = await natsForTests();
  nc = await connectNats({
    url: server.url,
    name: 'nats-roundtrip-test',
    logger: createLogger('test', { level: 'warn' }),
  });
  ctx = await openJetStream(nc);
  await ensureStreams(ctx.jsm);
  await ensureStreams(ctx.jsm); // idempotent
});

after(async () => {
  await nc?.close();
  await server?.stop();
});

test('work queue: publish (deduplicated), pull, ack; a nak is redelivered', async () => {
  const consumer = await ensureWorkConsumer(ctx, 'generate', { ackWaitMs: 30_000, maxDeliver: 3 });
  const subject = workSubject('default', 'generate', run, 1);
  const first = await publishWork(
    ctx.js,
    subject,
    new TextEncoder().encode('shard-0'),
    shardMsgId('default', 'generate', run, 1, 0),
  );
  const again = await publishWork(
    ctx.js,
    subject,
    new TextEncoder().encode('shard-0'),
    shardMsgId('default', 'generate', run, 1, 0),
  );
  assert.equal(first.duplicate, false);
  assert.equal(again.duplicate, true, 'the same shard id is stored once');
  await publishWork(
    ctx.js,
    subject,
    new TextEncoder().encode('shard-1'),
    shardMsgId('default', 'generate', run, 1, 1),
  );

  const m0 = await consumer.next({ expires: 5000 });
  assert.ok(m0);
  assert.equal(m0.subject, subject);
  assert.equal(new TextDecoder().decode(m0.data), 'shard-0');
  m0.nak(0);
  // A nak'd shard comes back, but not necessarily before the shards behind it: collect the next two.
  const seen = new Map<string, number>();
  for (let i = 0; i < 2; i++) {
    const m = await consumer.next({ expires: 5000 });
    assert.ok(m);
    seen.set(new TextDecoder().decode(m.data), m.info.deliveryCount);
    assert.ok(await m.ackAck());
  }
  assert.deepEqual(Object.fromEntries(seen), { 'shard-0': 2, 'shard-1': 1 });

  // Work-queue retention: acked shards are gone from the stream.
  const info = await ctx.jsm.streams.info(streams.work);
  assert.equal(info.state.messages, 0);
  assert.equal(await consumer.next({ expires: 1000 }), null);
});

test('a shard whose message a worker consumed is queued again by a retry inside the duplicate window', async () => {
  const consumer = await ensureWorkConsumer(ctx, 'judge', { ackWaitMs: 30_000, maxDeliver: 3 });
  const subject = workSubject('default', 'judge', run, 1);
  const id = shardMsgId('default', 'judge', run, 1, 0);
  const payload = new TextEncoder().encode('judge-shard-0');
  const first = await publishWork(ctx.js, subject, payload, id);
  // Still waiting in the queue: a second driver's publish is a no-op.
  assert.equal((await publishWork(ctx.js, subject, payload, id)).duplicate, true);
  const taken = await consumer.next({ expires: 5000 });
  assert.ok(taken);
  // Taken and not yet acked: still held, still a no-op.
  assert.equal((await publishWork(ctx.js, subject, payload, id)).duplicate, true);
  taken.term(); // the worker gave up on it: the queue deletes it
  await new Promise((r) => setTimeout(r, 200));
  const retry = await publishWork(ctx.js, subject, payload, id);
  assert.equal(retry.duplicate, false, 'a retried stage queues the consumed shard again');
  assert.ok(retry.seq > first.seq);
  // A second driver retrying at the same time derives the same id: still one message.
  assert.equal((await publishWork(ctx.js, subject, payload, id)).duplicate, true);
  const again = await consumer.next({ expires: 5000 });
  assert.ok(again);
  assert.equal(new TextDecoder().decode(again.data), 'judge-shard-0');
  assert.ok(await again.ackAck());
  // Consumed a second time: a third attempt queues it once more.
  assert.equal((await publishWork(ctx.js, subject, payload, id)).duplicate, false);
  const third = await consumer.next({ expires: 5000 });
  assert.ok(third);
  assert.ok(await third.ackAck());
  assert.equal(await consumer.next({ expires: 1000 }), null);
});

test('a work consumer made with another ack wait takes the one a worker asks for', async () => {
  // Not the 'generate' consumer of the test above; no stage is sharded over 'pair'.
  const stage = 'pair';
  await ensureWorkConsumer(ctx, stage, { ackWaitMs: 30_000, maxDeliver: 5 });
  await ensureWorkConsumer(ctx, stage, { ackWaitMs: 6000, maxDeliver: 4 });
  const info = await ctx.jsm.consumers.info(streams.work, workConsumerName(stage));
  assert.equal(info.config.ack_wait, 6000 * 1e6);
  assert.equal(info.config.max_deliver, 4);
  await ctx.jsm.consumers.delete(streams.work, workConsumerName(stage));
});

test('object store: a 5 MB artifact round-trips with its digest', async () => {
  const store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
  const data = new Uint8Array(randomBytes(5 * 1024 * 1024));
  const uri = `nats-obj://rlhf-test-${run}/runs/default/${run}/iter-1/generate/shard-0.bin`;
  const info = await store.put(uri, data);
  assert.equal(info.size, data.byteLength);
  const back = await store.get(uri);
  assert.equal(back.byteLength, data.byteLength);
  assert.equal(sha256Digest(back), sha256Digest(data));
  assert.deepEqual(await store.list(`nats-obj://rlhf-test-${run}/runs/default/${run}/`), [uri]);
  await store.delete(uri);
  assert.equal(await store.info(uri), null);
  await assert.rejects(store.get(uri), /does not exist/);
});

test('KV: state survives a reconnect-free read back, with revisions', async () => {
  const kv = await openStateKv(nc, `rlhf-test-${run}`);
  const rev1 = await kv.put('runs.default.demo', JSON.stringify({ stage: 'generate' }));
  const rev2 = await kv.put('runs.default.demo', JSON.stringify({ stage: 'judge' }));
  assert.ok(rev2 > rev1);
  const entry = await kv.get('runs.default.demo');
  assert.equal(entry?.string(), JSON.stringify({ stage: 'judge' }));
  await kv.destroy();
});
