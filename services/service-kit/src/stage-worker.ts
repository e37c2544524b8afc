/**
 * The NATS side of a service: pull shards of one stage from the work queue, tell JetStream the shard is
 * still being worked on while it runs (`working()`), ack only once the shard's output is stored, `nak` with a
 * delay on transient errors (the shard goes to another worker or comes back later), and `term` on bad input
 * (retrying cannot help). Every step is also an event on rlhf.events.<namespace>.<run>.<iteration>.<stage>.
 * Work is hostile until checked: a shard whose subject and key disagree, or whose run has no record in the
 * state KV (nobody started that run), is terminated and logged, never executed.
 */
import { hostname } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
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
  parseIntegerIn,
  parseWorkSubject,
  publishEvent,
  runRecordKey,
  type WorkStage,
} from '@rlhf/platform';
import { FailureReason, Stage, StageEvent, type StageProgress, StageWork } from '@rlhf/proto';

/**
 * Subject token of each proto stage (the `<stage>` of rlhf.work.<namespace>.<stage>.<run>.<iteration>),
 * each one of the platform's work-stage tokens.
 */
export const stageToken: Record<Stage, WorkStage | 'unspecified'> = {
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
  /**
   * Redelivery timeout when a worker goes silent: a killed worker's shard goes to another after this long.
   * Default $RLHF_WORK_ACK_WAIT_MS, else DEFAULT_WORK_ACK_WAIT_MS. Live workers send working() from a timer
   * every heartbeatMs(ackWaitMs), so it must stay well above the longest event-loop block of a shard.
   */
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

const userErrors = new Set([
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'FAILED_PRECONDITION',
  'PERMISSION_DENIED',
  'ALREADY_EXISTS',
  // A shard over a server limit (training bounds, request sizes) is over it on every delivery.
  'RESOURCE_EXHAUSTED',
]);

/**
 * The work consumers' ack wait. Heartbeats come from a timer, which waits while the event loop is blocked:
 * the longest block measured in a worker over examples/quickstart.yaml (on a busy 2-core machine) was 0.9 s,
 * in reward-model training (each shard's `eventLoopMaxMs` is in its shard-done log line). A heartbeat every
 * second is then at most 1.9 s apart, well inside 5 s; a killed worker's shard is redelivered 4-5 s after.
 */
export const DEFAULT_WORK_ACK_WAIT_MS = 5000;

/** How often a shard in hand is reported alive: a fifth of the ack wait, between 250 ms and 2 s. */
export function heartbeatMs(ackWaitMs: number): number {
  return Math.min(2000, Math.max(250, Math.floor(ackWaitMs / 5)));
}

/** The redelivery timeout set by the environment (RLHF_WORK_ACK_WAIT_MS), if any. */
export function workAckWaitFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.RLHF_WORK_ACK_WAIT_MS;
  return raw ? parseIntegerIn(raw, 'RLHF_WORK_ACK_WAIT_MS', 1000, 3_600_000) : undefined;
}

export async function startStageWorker(o: StageWorkerOptions): Promise<RunningWorker> {
  const ctx = await openJetStream(o.nats);
  await ensureStreams(ctx.jsm);
  const token = o.token ?? stageToken[o.stage];
  const ackWaitMs = o.ackWaitMs ?? workAckWaitFromEnv() ?? DEFAULT_WORK_ACK_WAIT_MS;
  const maxDeliver = o.maxDeliver ?? 5;
  const consumer = await ensureWorkConsumer(ctx, token, { ackWaitMs, maxDeliver });
  // The local launcher names its workers (`dpo-trainer-0`, the name of their log file).
  const worker = o.workerName ?? process.env.RLHF_WORKER_NAME ?? `${hostname()}-${process.pid}`;
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
    const heartbeat = setInterval(() => m.working(), heartbeatMs(ackWaitMs));
    // The longest stretch the event loop was blocked while this shard ran (heartbeats wait it out).
    const blocked = monitorEventLoopDelay({ resolution: 20 });
    blocked.enable();
    const blockedMs = () => Math.round(blocked.max / 1e6);
    await emit(work, {
      $case: 'started',
      value: { shardIndex: work.shardIndex, worker, attempt: m.info.deliveryCount },
    });
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
      log.info({ items: result.items, output: result.outputUri, eventLoopMaxMs: blockedMs() }, 'shard done');
      if (blockedMs() > ackWaitMs / 2)
        log.warn(
          { eventLoopMaxMs: blockedMs(), ackWaitMs },
          'the event loop was blocked for over half the ack wait: heartbeats may come late and the shard be redelivered while it runs; raise RLHF_WORK_ACK_WAIT_MS',
        );
    } catch (err) {
      const known = asRlhfError(err);
      const permanent = known !== null && userErrors.has(known.code);
      // Anything but an RlhfError may quote what it read (JSON.parse does): its text stays in this log.
      const message = known ? known.describe() : 'internal error; see the worker log';
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
      } else if (m.info.deliveryCount >= maxDeliver) {
        // The consumer would keep a message past its last delivery in the queue, where a retried stage's
        // re-publish counts as a duplicate of it; terminated, it is gone and the retry queues it afresh.
        log.error({ err }, 'shard failed on its last delivery; the stage fails');
        m.term(); // no reason text: see admitted()
      } else {
        log.error({ err }, 'shard failed; will be retried');
        m.nak(o.retryDelayMs ?? 2000);
      }
    } finally {
      clearInterval(heartbeat);
      blocked.disable();
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
