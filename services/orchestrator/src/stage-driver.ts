/**
 * Runs one sharded stage over NATS: publish each shard whose output is not stored yet (the message id
 * makes a re-publish a no-op), follow the stage's events for progress, and finish once every shard's
 * output exists. Completion is read from the store, not only from events, so a driver that restarts
 * mid-stage (or misses events while NATS is away) still sees shards finished meanwhile. A shard that fails
 * on bad input, or keeps failing until its deliveries run out, fails the stage with the worker's reason.
 * A shard that shows no sign of life for a while (no started, progress or done event) is reported, naming
 * the worker that last took it and its last progress, so a stall never goes unsaid; the report kills
 * nothing (the local supervisor restarts workers that are gone, and `signal` ends a stage it gives up on).
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import {
  type ArtifactStore,
  eventSubject,
  type Logger,
  type NatsConnection,
  publishWork,
  RlhfError,
  shardMsgId,
  type WorkStage,
  workSubject,
} from '@rlhf/platform';
import { type Stage, StageEvent, StageWork } from '@rlhf/proto';
import type { RunRef } from '@rlhf/workflow';
import { type ProgressFn, ShardProgress } from './shard-progress.js';

export interface ShardSpec {
  input: string;
  output: string;
  /** Global index of the shard's first row (seeds per-row randomness independently of sharding). */
  firstRow: number;
  rows: number;
  /** The object whose presence says the shard is done (default: `output`; a model's manifest for training). */
  doneMarker?: string;
}

export interface StageSpec {
  run: RunRef;
  iteration: number;
  /** Subject token (`generate`, `judge`, ...). */
  token: WorkStage;
  stage: Stage;
  shards: ShardSpec[];
  params: StageWork['params'];
  /** Failed deliveries of one shard before the stage gives up on it (the work consumer's max deliver). */
  maxDeliver: number;
  /** What progress counts (prompts, steps, pairs). */
  unit: string;
}

export interface StageDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  store: ArtifactStore;
  logger: Logger;
  /** Tells the person at the terminal something they must know now (NATS gone, NATS back). */
  notice?: (line: string) => void;
  /** Aborted when the run cannot go on (a worker that keeps failing); a waiting stage ends with its reason. */
  signal?: AbortSignal;
  /** A shard with no event for this long is reported, and again each further time as long (default 120 s). */
  stallMs?: number;
  /** What the run knows of a worker named in a `started` event (e.g. its pid and log file). */
  describeWorker?: (worker: string) => string | undefined;
}

export type { ProgressFn } from './shard-progress.js';

const POLL_MS = 1500;
export const DEFAULT_STALL_MS = 120_000;

/** The message of shard `i` of a stage, as every executor hands it to the stage's shard handler. */
export function stageWorkOf(spec: StageSpec, i: number): StageWork {
  const s = spec.shards[i] as ShardSpec;
  return StageWork.fromPartial({
    // runUid: this incarnation, so a worker drops a shard left over from a run started afresh.
    key: {
      namespace: spec.run.namespace,
      run: spec.run.name,
      iteration: spec.iteration,
      stage: spec.stage,
      runUid: spec.run.epoch ?? '',
    },
    shardIndex: i,
    shardCount: spec.shards.length,
    inputUri: s.input,
    outputUri: s.output,
    firstRowIndex: s.firstRow,
    createdAt: new Date(),
    params: spec.params,
  });
}

export async function stored(store: ArtifactStore, uri: string): Promise<boolean> {
  return (await store.info(uri)) !== null;
}

export async function runShardedStage(
  deps: StageDeps,
  spec: StageSpec,
  onProgress?: ProgressFn,
): Promise<void> {
  const { run, iteration, token } = spec;
  const progress = new ShardProgress(spec.shards, spec.unit, onProgress);
  const done = progress.done;
  const failures = new Map<number, number>();
  const failed: { error: RlhfError | null } = { error: null };
  const waker: { wake: (() => void) | null } = { wake: null };
  // For the stall report: when each shard last showed a sign of life, who took it, how far it got.
  const lastSeen = new Map<number, number>();
  const lastReported = new Map<number, number>();
  const workerOf = new Map<number, string>();
  const lastProgress = new Map<number, string>();
  const seen = (shard: number) => lastSeen.set(shard, Date.now());
  const report = () => progress.report();

  const sub = deps.nc.subscribe(eventSubject(run.namespace, run.name, iteration, token));
  const follow = (async () => {
    for await (const m of sub) {
      let ev: StageEvent;
      try {
        ev = StageEvent.decode(m.data);
      } catch {
        continue;
      }
      if (ev.key && ev.key.namespace !== run.namespace) continue;
      const e = ev.event;
      if (!e) continue;
      if (e.$case === 'started') {
        seen(e.value.shardIndex);
        workerOf.set(e.value.shardIndex, e.value.worker);
      } else if (e.$case === 'progress') {
        seen(e.value.shardIndex);
        const unit = e.value.unit || spec.unit;
        lastProgress.set(e.value.shardIndex, `${Number(e.value.done)}/${Number(e.value.total)} ${unit}`);
        progress.update(e.value.shardIndex, e.value.unit, Number(e.value.done), Number(e.value.total));
      } else if (e.$case === 'shardDone') {
        seen(e.value.shardIndex);
        waker.wake?.();
      } else if (e.$case === 'failed') {
        const shard = e.value.shardIndex ?? -1;
        const n = (failures.get(shard) ?? 0) + 1;
        failures.set(shard, n);
        if (!e.value.retryable) {
          failed.error = new RlhfError(
            'FAILED_PRECONDITION',
            `${token} shard ${shard} failed: ${e.value.message}`,
            {
              field: `iteration ${iteration} ${token}`,
              fix: 'correct the input named in the message and run the same command again',
            },
          );
        } else if (n >= spec.maxDeliver) {
          failed.error = new RlhfError(
            'UNAVAILABLE',
            `${token} shard ${shard} failed ${n} times (dead letter): ${e.value.message}`,
            {
              field: `iteration ${iteration} ${token}`,
              fix: 'see the worker logs; run the same command again to retry',
            },
          );
        } else {
          deps.logger.warn(
            { shard, attempt: n, message: e.value.message },
            `${token} shard failed; it will be retried`,
          );
        }
        waker.wake?.();
      }
    }
  })();

  const stallMs = deps.stallMs ?? DEFAULT_STALL_MS;
  // As the terminal names the stage (setup stages are iteration 0).
  const label = iteration > 0 ? `iteration ${iteration} ${token}` : token;
  const reportStalls = () => {
    const now = Date.now();
    for (let i = 0; i < spec.shards.length; i++) {
      if (done.has(i)) continue;
      const idle = now - (lastSeen.get(i) ?? now);
      if (idle < stallMs || now - (lastReported.get(i) ?? 0) < stallMs) continue;
      lastReported.set(i, now);
      const name = workerOf.get(i);
      const who = name
        ? `worker ${deps.describeWorker?.(name) ?? name} took it`
        : 'no worker has taken it yet (is a worker of this stage running?)';
      const progress = lastProgress.get(i);
      const line = `${label}: shard ${i} of ${spec.shards.length} shows no progress for ${Math.round(idle / 1000)} s; ${who}; ${progress ? `last progress ${progress}` : 'no progress reported yet'}`;
      deps.logger.warn({ shard: i, worker: name, idleMs: idle, progress }, line);
      deps.notice?.(line);
    }
  };
  const aborted = () => {
    if (deps.signal?.aborted) throw deps.signal.reason;
  };
  const onAbort = () => waker.wake?.();
  deps.signal?.addEventListener('abort', onAbort);

  try {
    aborted();
    for (let i = 0; i < spec.shards.length; i++) {
      const s = spec.shards[i] as ShardSpec;
      if (await stored(deps.store, s.doneMarker ?? s.output)) {
        done.add(i);
        continue;
      }
      const work = stageWorkOf(spec, i);
      await publishWork(
        deps.js,
        workSubject(run.namespace, token, run.name, iteration),
        StageWork.encode(work).finish(),
        `${run.epoch ? `${run.epoch}/` : ''}${shardMsgId(run.namespace, token, run.name, iteration, i)}`,
      );
      if (!lastSeen.has(i)) seen(i);
    }
    report();
    let natsDown = false;
    while (done.size < spec.shards.length) {
      if (failed.error) throw failed.error;
      await new Promise<void>((resolve) => {
        waker.wake = resolve;
        setTimeout(resolve, POLL_MS);
      });
      waker.wake = null;
      aborted();
      if (failed.error) throw failed.error;
      try {
        for (let i = 0; i < spec.shards.length; i++)
          if (!done.has(i)) {
            const s = spec.shards[i] as ShardSpec;
            if (await stored(deps.store, s.doneMarker ?? s.output)) done.add(i);
          }
        if (natsDown) {
          deps.logger.warn('NATS is back; the run continues');
          deps.notice?.('NATS is back; the run continues');
          // Events sent while NATS was away are lost: the stall clock starts again from now.
          for (const i of lastSeen.keys()) seen(i);
        }
        natsDown = false;
        reportStalls();
      } catch (err) {
        if (!natsDown) {
          const message = 'NATS is unreachable; the run is paused until it is back';
          deps.logger.warn({ err: (err as Error).message }, message);
          deps.notice?.(`${message} (${(err as Error).message}); nothing is lost, finished shards are kept`);
        }
        natsDown = true;
      }
      report();
    }
  } finally {
    deps.signal?.removeEventListener('abort', onAbort);
    sub.unsubscribe();
    await follow.catch(() => {});
  }
}
