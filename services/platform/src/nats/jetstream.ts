/**
 * JetStream resources of the platform, created idempotently by whichever process comes first: the work-queue
 * stream, the events stream, and durable pull consumers (one per stage) that workers share.
 */
import {
  AckPolicy,
  type Consumer,
  type ConsumerInfo,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { type ObjectStore, Objm } from '@nats-io/obj';
import { type NatsConnection, nanos } from '@nats-io/transport-node';
import { buckets, streams, workFilter } from './subjects.js';

export interface JetStreamContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export async function openJetStream(nc: NatsConnection): Promise<JetStreamContext> {
  return { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
}

const streamConfigs: Array<Partial<StreamConfig> & { name: string; subjects: string[] }> = [
  {
    name: streams.work,
    subjects: ['rlhf.work.>'],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    // A shard re-published within this window (a controller restarted mid-publish) is stored once.
    duplicate_window: nanos(10 * 60_000),
  },
  {
    name: streams.events,
    subjects: ['rlhf.events.>'],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(7 * 24 * 3_600_000),
    duplicate_window: nanos(2 * 60_000),
  },
];

/** Creates the platform's streams, or leaves them as they are when they already exist. */
export async function ensureStreams(jsm: JetStreamManager): Promise<void> {
  for (const config of streamConfigs) {
    try {
      await jsm.streams.info(config.name);
    } catch {
      await jsm.streams.add(config);
    }
  }
}

export interface WorkConsumerOptions {
  /** How long a worker may hold a shard without ack or `working()` before it is redelivered. */
  ackWaitMs?: number;
  /** Deliveries before a shard is given up as a dead letter. */
  maxDeliver?: number;
}

export function workConsumerName(stage: string): string {
  return `work-${stage}`;
}

/** The durable pull consumer that all workers of one stage pull from, created when missing. */
export async function ensureWorkConsumer(
  ctx: JetStreamContext,
  stage: string,
  options: WorkConsumerOptions = {},
): Promise<Consumer> {
  const name = workConsumerName(stage);
  const ackWait = nanos(options.ackWaitMs ?? 30_000);
  const maxDeliver = options.maxDeliver ?? 5;
  let existing: ConsumerInfo | null = null;
  try {
    existing = await ctx.jsm.consumers.info(streams.work, name);
  } catch {
    existing = null;
  }
  // A consumer made by a version whose subjects had no namespace (`rlhf.work.<stage>.>`) would never see
  // namespaced work: it is replaced (a work-queue stream allows no second, overlapping consumer beside it).
  if (existing && existing.config.filter_subject !== workFilter(stage)) {
    await ctx.jsm.consumers.delete(streams.work, name);
    existing = null;
  }
  if (!existing) {
    await ctx.jsm.consumers.add(streams.work, {
      durable_name: name,
      filter_subject: workFilter(stage),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ackWait,
      max_deliver: maxDeliver,
    });
  }
  // A consumer made by an earlier version (or with other settings) takes this worker's: with a longer ack
  // wait than its heartbeats need, a killed worker's shard would wait that long to be redelivered.
  if (existing && (existing.config.ack_wait !== ackWait || existing.config.max_deliver !== maxDeliver))
    await ctx.jsm.consumers.update(streams.work, name, { ack_wait: ackWait, max_deliver: maxDeliver });
  return ctx.js.consumers.get(streams.work, name);
}

export interface PublishResult {
  seq: number;
  /** True when the server already held a message with this id (a re-publish). */
  duplicate: boolean;
}

/** Publishes one shard of stage work; the message id makes a re-publish a no-op. */
/**
 * Publishes a shard's work. The message id makes a re-publish a no-op while the first message is still in
 * the work queue (waiting, or taken and not yet acked), so a driver that restarts never queues a shard
 * twice. But the queue deletes a message once a worker acks or terminates it, and the stream's duplicate
 * window would go on dropping a re-publish of that id: a stage retried after a shard failed would wait for
 * work nobody can take. So a duplicate whose original is gone is published again under an id derived from
 * the original's sequence; two drivers retrying at once derive the same id and still queue it once.
 */
export async function publishWork(
  js: JetStreamClient,
  subject: string,
  payload: Uint8Array,
  msgId: string,
): Promise<PublishResult> {
  let id = msgId;
  // Each hop passes one consumed message of this shard still inside the duplicate window.
  for (let hop = 0; hop < 1000; hop++) {
    const ack = await js.publish(subject, payload, { msgID: id });
    if (!ack.duplicate) return { seq: ack.seq, duplicate: false };
    const jsm = await js.jetstreamManager();
    if (await jsm.streams.getMessage(ack.stream, { seq: ack.seq })) return { seq: ack.seq, duplicate: true };
    id = `${msgId}~${ack.seq}`;
  }
  throw new Error(`shard ${msgId} was consumed 1000 times within the duplicate window`);
}

export async function publishEvent(
  js: JetStreamClient,
  subject: string,
  payload: Uint8Array,
  msgId?: string,
): Promise<void> {
  await js.publish(subject, payload, msgId === undefined ? {} : { msgID: msgId });
}

export async function openStateKv(nc: NatsConnection, bucket: string = buckets.state): Promise<KV> {
  return new Kvm(nc).create(bucket, { history: 5 });
}

export async function openObjectStore(
  nc: NatsConnection,
  bucket: string = buckets.artifacts,
): Promise<ObjectStore> {
  return new Objm(nc).create(bucket);
}
