/**
 * A stage's shard function as a service offers it, apart from how shards reach it: the NATS stage worker
 * (`startShardWorker`) pulls them from the stage's work queue, an in-process run calls `handle` directly.
 * Both call the very same function, so a run's figures do not depend on the transport.
 */
import type { Logger, NatsConnection, ServiceContext, ServiceModule } from '@rlhf/platform';
import type { Stage, StageWork } from '@rlhf/proto';
import {
  type RunningWorker,
  type ShardContext,
  type ShardResult,
  stageToken,
  startStageWorker,
} from './stage-worker.js';

export interface ShardHandler {
  stage: Stage;
  /** The work queue's subject token: the stage's own, or its own queue's (`judge-preference`). */
  token: string;
  /** The worker's name in the log (`generate`, `judge-reward`, ...). */
  name: string;
  /** Whether this handler serves the shard (a reward judge declines a preference judge's shard). */
  accepts?(work: StageWork): boolean;
  handle(work: StageWork, ctx: ShardContext): Promise<ShardResult>;
}

/** A handler for `stage` on the stage's own queue. */
export function shardHandler(
  stage: Stage,
  name: string,
  handle: ShardHandler['handle'],
  more: { token?: string; accepts?: ShardHandler['accepts'] } = {},
): ShardHandler {
  return {
    stage,
    token: more.token ?? stageToken[stage],
    name,
    handle,
    ...(more.accepts ? { accepts: more.accepts } : {}),
  };
}

/** Serves `handler`'s shards from its work queue (one at a time). */
export function startShardWorker(o: {
  nats: NatsConnection;
  logger: Logger;
  handler: ShardHandler;
  ackWaitMs?: number;
}): Promise<RunningWorker> {
  const h = o.handler;
  return startStageWorker({
    nats: o.nats,
    stage: h.stage,
    ...(h.token === stageToken[h.stage] ? {} : { token: h.token }),
    logger: o.logger.child({ worker: h.name }),
    handle: (work, ctx) => h.handle(work, ctx),
    ...(h.accepts ? { accepts: h.accepts } : {}),
    ...(o.ackWaitMs === undefined ? {} : { ackWaitMs: o.ackWaitMs }),
  });
}

/**
 * A service with stage work: its shard handlers in a host context. Its `start` serves them over NATS when
 * the context has a connection; a host without NATS calls them itself (and `start`'s stop function still
 * releases the models and jobs they hold).
 */
export interface StageServiceModule extends ServiceModule {
  shardHandlers(ctx: ServiceContext): ShardHandler[];
}

/** The connection stage workers pull from: none without NATS, or with NATS for artifacts only (--stage-work off). */
export function stageWorkNats(ctx: ServiceContext): NatsConnection | null {
  return ctx.stageWork === false ? null : ctx.nats;
}

/** One worker per handler (started in order, so a failing start leaves none behind unstopped). */
export async function startShardWorkers(o: {
  nats: NatsConnection;
  logger: Logger;
  handlers: readonly ShardHandler[];
  ackWaitMs?: number;
}): Promise<RunningWorker[]> {
  const workers: RunningWorker[] = [];
  try {
    for (const handler of o.handlers)
      workers.push(
        await startShardWorker({
          nats: o.nats,
          logger: o.logger,
          handler,
          ...(o.ackWaitMs === undefined ? {} : { ackWaitMs: o.ackWaitMs }),
        }),
      );
  } catch (err) {
    await Promise.all(workers.map((w) => w.stop()));
    throw err;
  }
  return workers;
}
