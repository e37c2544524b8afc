/**
 * The NATS side of a service: pull shards of one stage from the work queue, tell JetStream the shard is
 * still being worked on while it runs (`working()`), ack only once the shard's output is stored, `nak` with a
 * delay on transient errors (the shard goes to another worker or comes back later), and `term` on bad input
 * (retrying cannot help). Every step is also an event on rlhf.events.<namespace>.<run>.<iteration>.<stage>.
 * Work is hostile until checked: a shard whose subject and key disagree, or whose run has no record in the
 * state KV (nobody started that run), is terminated and logged, never executed.
 */
import { hostname } from 'node:os';
import type { JsMsg } from '@nats-io/jetstream';
import {
  asRlhfError,
  ensureStreams,
  ensureWorkConsumer,
  eventSubject,
  type Logger,
  type NatsConnection,
  openJetStream,
  openStateKv,
  parseWorkSubject,
  publishEvent,
  runRecordKey,
} from '@rlhf/platform';
import { FailureReason, Stage, StageEvent, type StageProgress, StageWork } from '@rlhf/proto';

/** Subject token of each stage (the `<stage>` of rlhf.work.<namespace>.<stage>.<run>.<iteration>). */
export const stageToken: Record<Stage, string> = {
  [Stage.STAGE_UNSPECIFIED]: 'unspecified',
  [Stage.STAGE_SFT]: 'sft',
  [Stage.STAGE_REWARD_MODEL]: 'reward-model',
  [Stage.STAGE_PREFERENCE_MODEL]: 'preference-model',
  [Stage.STAGE_GENERATE]: 'generate',
  [Stage.STAGE_JUDGE]: 'judge',
  [Stage.STAGE_PAIR]: 'pair',
  [Stage.STAGE_TRAIN]: 'train',
  [Stage.STAGE_EVALUATE]: 'evaluate',
  [Stage.UNRECOGNIZED]: 'unspecified',
};

export interface ShardResult {
  outputUri: string;
  items: number;
}

export interface ShardContext {
  /** Reports progress (also keeps the message alive). */
  progress(p: Partial<StageProgress>): Promise<void>;
  logger: Logger;
  /** How many times this shard has been delivered (1 on the first try). */
  delivery: number;
}

/** Progress of a shard worked through prompt by prompt: `done` of `total` since `started` (Date.now()). */
export function promptProgress(done: number, total: number, started: number): Partial<StageProgress> {
  const seconds = (Date.now() - started) / 1000;
  return {
    done,
    total,
    unit: 'prompts',
    rate: done / Math.max(seconds, 1e-3),
    etaSeconds: ((total - done) * seconds) / done,
  };
}

export interface StageWorkerOptions {
  nats: NatsConnection;
  stage: Stage;
  /** The queue's subject token when it is not the stage's own (the preference judge: `judge-preference`). */
  token?: string;
  logger: Logger;
  handle(work: StageWork, ctx: ShardContext): Promise<ShardResult>;
  /**
   * Whether this worker serves the shard (e.g. a reward-model worker and a JUDGE shard of the preference
   * type share the stage's queue). A declined shard is handed back with `nak` after `retryDelayMs` for
   * another worker, without events: it has not started.
   */
  accepts?(work: StageWork): boolean;
  /** Redelivery timeout when a worker goes silent (it sends working() every third of it). */
  ackWaitMs?: number;
  maxDeliver?: number;
  /** Delay before a shard that failed transiently is redelivered. */
  retryDelayMs?: number;
  workerName?: string;
}

export interface RunningWorker {
  /** Stops pulling, lets the shard in hand finish, then returns. */
  stop(): Promise<void>;
}

const userErrors = new Set(['INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION']);

export async function startStageWorker(o: StageWorkerOptions): Promise<RunningWorker> {
  const ctx = await openJetStream(o.nats);
  await ensureStreams(ctx.jsm);
  const token = o.token ?? stageToken[o.stage];
  const ackWaitMs = o.ackWaitMs ?? 30_000;
  const consumer = await ensureWorkConsumer(ctx, token, { ackWaitMs, maxDeliver: o.maxDeliver ?? 5 });
  const worker = o.workerName ?? `${hostname()}-${process.pid}`;
  let stopping = false;

  const emit = async (work: StageWork, event: StageEvent['event']): Promise<void> => {
    const key = work.key;
    if (!key) return;
    const msg = StageEvent.fromPartial({ key, time: new Date(), event });
    await publishEvent(
      ctx.js,
      eventSubject(key.namespace, key.run, key.iteration, token),
      StageEvent.encode(msg).finish(),
    ).catch((err: unknown) => o.logger.warn({ err }, 'could not publish a stage event'));
  };

  const state = await openStateKv(o.nats);
  /** Whether the shard may run: its key agrees with its subject and its run has a record (else term). */
  const admitted = async (m: JsMsg, work: StageWork): Promise<boolean> => {
    const at = parseWorkSubject(m.subject);
    const key = work.key;
    const refuse = (why: string): false => {
      o.logger.error(
        { subject: m.subject, namespace: key?.namespace, run: key?.run, iteration: key?.iteration },
        `stray stage work: ${why}; terminating it`,
      );
      // No reason text: nats-server 2.9 ignores a +TERM that carries one (the log line has it).
      m.term();
      return false;
    };
    if (!at || !key) return refuse('not a work subject, or no key');
    if (key.namespace !== at.namespace || key.run !== at.run || key.iteration !== at.iteration)
      return refuse('its key names another namespace, run or iteration than its subject');
    let record: Awaited<ReturnType<typeof state.get>>;
    try {
      record = await state.get(runRecordKey(at.namespace, at.run));
    } catch (err) {
      o.logger.warn({ err, subject: m.subject }, 'cannot read the run record; the shard is retried');
      m.nak(o.retryDelayMs ?? 2000);
      return false;
    }
    if (record?.operation !== 'PUT' || record.value.length === 0)
      return refuse(`run ${at.namespace}/${at.run} has no record in KV (nobody started it)`);
    let epoch: unknown;
    try {
      epoch = (JSON.parse(new TextDecoder().decode(record.value)) as { epoch?: unknown }).epoch;
    } catch {
      epoch = undefined;
    }
    if (key.runUid !== '' && typeof epoch === 'string' && key.runUid !== epoch)
      return refuse(`its run_uid is not that of run ${at.namespace}/${at.run} (a run since started afresh)`);
    return true;
  };

  const handleOne = async (m: JsMsg): Promise<void> => {
    let work: StageWork;
    try {
      work = StageWork.decode(m.data);
    } catch (err) {
      o.logger.error({ err, subject: m.subject }, 'undecodable stage work; terminating it');
      m.term(); // no reason text: see admitted()
      return;
    }
    if (!(await admitted(m, work))) return;
    if (o.accepts && !o.accepts(work)) {
      o.logger.debug({ subject: m.subject, shard: work.shardIndex }, 'shard is for another worker kind');
      m.nak(o.retryDelayMs ?? 2000);
      return;
    }
    const log = o.logger.child({
      run: work.key?.run,
      iteration: work.key?.iteration,
      stage: token,
      shard: work.shardIndex,
    });
    const heartbeat = setInterval(() => m.working(), Math.max(1000, ackWaitMs / 3));
    await emit(work, { $case: 'started', value: { shardIndex: work.shardIndex, worker } });
    try {
      const result = await o.handle(work, {
        logger: log,
        delivery: m.info.deliveryCount,
        progress: async (p) => {
          m.working();
          await emit(work, {
            $case: 'progress',
            value: { shardIndex: work.shardIndex, done: 0, total: 0, unit: '', rate: 0, etaSeconds: 0, ...p },
          });
        },
      });
      // The output is stored (handle returned), so the shard is done: say so, then ack.
      await emit(work, {
        $case: 'shardDone',
        value: { shardIndex: work.shardIndex, outputUri: result.outputUri, items: result.items },
      });
      await m.ackAck();
      log.info({ items: result.items, output: result.outputUri }, 'shard done');
    } catch (err) {
      const known = asRlhfError(err);
      const permanent = known !== null && userErrors.has(known.code);
      const message = known ? known.describe() : err instanceof Error ? err.message : String(err);
      await emit(work, {
        $case: 'failed',
        value: {
          reason: permanent
            ? known?.code === 'NOT_FOUND'
              ? FailureReason.FAILURE_REASON_NOT_FOUND
              : FailureReason.FAILURE_REASON_INVALID_INPUT
            : FailureReason.FAILURE_REASON_TRANSIENT,
          message,
          shardIndex: work.shardIndex,
          retryable: !permanent,
        },
      });
      if (permanent) {
        log.warn({ message }, 'shard failed on bad input; not retrying');
        m.term(); // no reason text: see admitted()
      } else {
        log.error({ err }, 'shard failed; will be retried');
        m.nak(o.retryDelayMs ?? 2000);
      }
    } finally {
      clearInterval(heartbeat);
    }
  };

  const loop = (async () => {
    while (!stopping) {
      let m: JsMsg | null = null;
      try {
        m = await consumer.next({ expires: 2000 });
      } catch (err) {
        if (stopping) break;
        o.logger.warn({ err }, 'pulling stage work failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (m) await handleOne(m);
    }
  })();

  return {
    stop: async () => {
      stopping = true;
      await loop;
    },
  };
}
