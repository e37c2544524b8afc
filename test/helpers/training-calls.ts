/**
 * Training-job helpers shared by the trainer tests: a TrainingJobsService client with promise methods,
 * collect a WatchTrainingJob stream until the server ends it, read the final status off it, send a
 * hand-encoded request (e.g. with invalid UTF-8) through a generic grpc-js unary call, and follow a stage's
 * events on NATS.
 */
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { NatsConnection } from '@rlhf/platform';
import {
  type DpoParams,
  type GetTrainingCapabilitiesResponse,
  type JobStatus,
  ListTrainingJobsRequest,
  type ListTrainingJobsResponse,
  StageEvent,
  StartTrainingJobRequest,
  type TrainingEvent,
  type TrainingHyperparameters,
  TrainingJobsServiceClient,
  type TrainingMetrics,
} from '@rlhf/proto';
import { unaryCall } from './grpc-calls.js';

/** A start request as a test writes it: nested messages may be partial too. */
export type StartJob = Omit<Partial<StartTrainingJobRequest>, 'hyperparameters' | 'dpo'> & {
  hyperparameters?: Partial<TrainingHyperparameters>;
  dpo?: Partial<DpoParams>;
};

/** TrainingJobsService at `address` (plaintext), each rpc as a promise; `close()` when done. */
export function trainingJobsClient(address: string, credentials = grpc.credentials.createInsecure()) {
  const client = new TrainingJobsServiceClient(address, credentials);
  return {
    client,
    start: (req: StartJob, deadlineMs?: number): Promise<JobStatus> =>
      unaryCall(
        client.startTrainingJob.bind(client),
        StartTrainingJobRequest.fromPartial(req),
        deadlineMs,
      ).then((r) => r.job as JobStatus),
    get: (jobId: string): Promise<JobStatus> =>
      unaryCall(client.getTrainingJob.bind(client), { jobId }).then((r) => r.job as JobStatus),
    cancel: (jobId: string, reason = ''): Promise<JobStatus> =>
      unaryCall(client.cancelTrainingJob.bind(client), { jobId, reason }).then((r) => r.job as JobStatus),
    list: (req: Partial<ListTrainingJobsRequest> = {}): Promise<ListTrainingJobsResponse> =>
      unaryCall(client.listTrainingJobs.bind(client), ListTrainingJobsRequest.fromPartial(req)),
    capabilities: (): Promise<GetTrainingCapabilitiesResponse> =>
      unaryCall(client.getTrainingCapabilities.bind(client), {}),
    watch: (jobId: string, onEvent?: (e: TrainingEvent) => void): Promise<TrainingEvent[]> =>
      collectWatch(client.watchTrainingJob({ jobId }), onEvent),
    close: () => client.close(),
  };
}

export type TrainingJobsCalls = ReturnType<typeof trainingJobsClient>;

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
