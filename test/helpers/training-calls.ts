/**
 * Training-job helpers shared by the trainer tests: collect a Watch* stream until the server ends it, read
 * the final status off it, send a hand-encoded request (e.g. with invalid UTF-8) through a generic grpc-js
 * unary call, and follow a stage's events on NATS.
 */
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import type { NatsConnection } from '@rlhf/platform';
import { type JobStatus, StageEvent, type TrainingEvent, type TrainingMetrics } from '@rlhf/proto';

/** Every event of a watch stream until the server ends it; `onEvent` may act on each as it comes. */
export function collectWatch(
  call: grpc.ClientReadableStream<{ event?: TrainingEvent | undefined }>,
  onEvent: (e: TrainingEvent) => void = () => {},
): Promise<TrainingEvent[]> {
  return new Promise((resolve, reject) => {
    const events: TrainingEvent[] = [];
    call.on('data', (r: { event?: TrainingEvent | undefined }) => {
      if (!r.event) return;
      events.push(r.event);
      onEvent(r.event);
    });
    call.on('error', reject);
    call.on('end', () => resolve(events));
  });
}

/** The status a watch ended with (its last event, `finished`). */
export function finalStatus(events: TrainingEvent[]): JobStatus {
  const last = events.at(-1)?.event;
  assert.equal(last?.$case, 'finished', `the watch ends with finished, got ${last?.$case}`);
  return last.value;
}

export function progressOf(events: TrainingEvent[]): TrainingMetrics[] {
  return events.flatMap((e) => (e.event?.$case === 'progress' ? [e.event.value] : []));
}

/**
 * Sends `bytes` as the request of `method` with an identity serializer, so a test can put bytes on the wire
 * that the typed client would never write (invalid UTF-8 in a string field).
 */
export function rawUnary<Res>(
  client: grpc.Client,
  method: string,
  bytes: Buffer,
  decode: (b: Buffer) => Res,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      method,
      (b: Buffer) => b,
      decode,
      bytes,
      (err, res) => (err ? reject(err) : resolve(res as Res)),
    ),
  );
}

/** `bytes` with the first occurrence of `marker` (2 ASCII bytes) replaced by an invalid UTF-8 sequence. */
export function withInvalidUtf8(bytes: Uint8Array, marker: string): Buffer {
  const out = Buffer.from(bytes);
  const at = out.indexOf(marker);
  assert.ok(at >= 0 && marker.length === 2, `marker ${marker} is in the encoded request`);
  out[at] = 0xc3; // a lead byte followed by a non-continuation byte
  out[at + 1] = 0x28;
  return out;
}

/** Collects the stage events of `run` until `until` says enough; unsubscribes when done. */
export function followStage(
  nc: NatsConnection,
  run: string,
  until: (events: StageEvent[]) => boolean,
): { events: StageEvent[]; done: Promise<void> } {
  const events: StageEvent[] = [];
  const sub = nc.subscribe(`rlhf.events.default.${run}.>`);
  const done = (async () => {
    for await (const m of sub) {
      events.push(StageEvent.decode(m.data));
      if (until(events)) break;
    }
    sub.unsubscribe();
  })();
  return { events, done };
}
