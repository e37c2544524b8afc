/**
 * The chunks of one Object Store object, read at the pace of whoever consumes them. The nats.js client's
 * own `get` pushes every chunk into its ReadableStream as fast as the server sends them, so a consumer
 * slower than the network (a disk) ends up holding the whole object in memory; here an ordered pull
 * consumer asks for a bounded batch at a time instead.
 */
import { jetstream } from '@nats-io/jetstream';
import type { ObjectInfo } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';

/** Chunks asked for at once: with the Object Store's 128 KiB chunks, at most 4 MiB buffered. */
const BATCH = 32;

/** Yields the object's chunks in order; ends after the last one (none for an empty object). */
export async function* objectChunks(
  nc: NatsConnection,
  bucket: string,
  meta: ObjectInfo,
): AsyncGenerator<Uint8Array> {
  if (meta.size === 0 || meta.chunks === 0) return;
  const consumer = await jetstream(nc).consumers.get(`OBJ_${bucket}`, {
    filter_subjects: `$O.${bucket}.C.${meta.nuid}`,
  });
  const messages = await consumer.consume({ max_messages: BATCH });
  try {
    for await (const m of messages) {
      if (m.data.length > 0) yield m.data;
      if (m.info.pending === 0) return;
    }
  } finally {
    messages.stop();
  }
}
