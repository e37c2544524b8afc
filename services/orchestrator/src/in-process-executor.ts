/**
 * Runs a sharded stage in this process: each shard whose output is not stored yet goes, as the same
 * StageWork message the NATS executor publishes, straight to the shard handler the stage's service serves
 * its work queue with. The handlers come from whoever loaded the services (the CLI), so this package
 * depends on none of them. Shards run one after another, as with one worker per stage; a shard's
 * progress feeds the stage's bar. A failing shard fails the stage at once, naming the shard and the
 * handler's reason: there is no other worker to hand it to, and running the same command again resumes.
 */
import { asRlhfError, type Logger, RlhfError } from '@rlhf/platform';
import type { ShardHandler } from '@rlhf/service-kit';
import type { ShardExecutor } from './shard-executor.js';
import { ShardProgress } from './shard-progress.js';
import { type StageDeps, type StageSpec, stageWorkOf, stored } from './stage-driver.js';

export interface InProcessDeps {
  store: StageDeps['store'];
  logger: Logger;
  /** Every stage's handler, by its queue token (`generate`, `judge`, `judge-preference`, `train`, ...). */
  handlers: ReadonlyMap<string, ShardHandler>;
}

/** The handlers by queue token; a token served twice is a wiring mistake and is refused. */
export function handlersByToken(handlers: readonly ShardHandler[]): Map<string, ShardHandler> {
  const out = new Map<string, ShardHandler>();
  for (const h of handlers) {
    if (out.has(h.token))
      throw new RlhfError('INTERNAL', `two shard handlers serve the ${h.token} queue`, {
        field: 'handlers',
        fix: 'hand each stage token one handler',
      });
    out.set(h.token, h);
  }
  return out;
}

export function inProcessShardExecutor(deps: InProcessDeps): ShardExecutor {
  return async (spec, onProgress) => {
    const handler = deps.handlers.get(spec.token);
    const where = `iteration ${spec.iteration} ${spec.token}`;
    if (!handler)
      throw new RlhfError(
        'FAILED_PRECONDITION',
        `no shard handler for the ${spec.token} stage in this process`,
        {
          field: where,
          fix: 'load the service that serves this stage (see the CLI service registry)',
        },
      );
    const progress = new ShardProgress(spec.shards, spec.unit, onProgress);
    for (let i = 0; i < spec.shards.length; i++) {
      const s = spec.shards[i] as StageSpec['shards'][number];
      if (await stored(deps.store, s.doneMarker ?? s.output)) progress.finish(i);
    }
    progress.report();
    for (let i = 0; i < spec.shards.length; i++) {
      if (progress.done.has(i)) continue;
      const work = stageWorkOf(spec, i);
      if (handler.accepts && !handler.accepts(work))
        throw new RlhfError('FAILED_PRECONDITION', `the ${spec.token} handler declines shard ${i}`, {
          field: where,
          fix: 'the stage parameters name a judge or objective no loaded service serves',
        });
      const logger = deps.logger.child({ stage: spec.token, iteration: spec.iteration, shard: i });
      try {
        await handler.handle(work, {
          logger,
          delivery: 1,
          progress: async (p) => progress.update(i, p.unit, Number(p.done ?? 0), Number(p.total ?? 0)),
        });
      } catch (err) {
        const known = asRlhfError(err);
        if (!known) throw err;
        throw new RlhfError(known.code, `${spec.token} shard ${i} failed: ${known.describe()}`, {
          field: where,
          fix: 'run the same command again once the cause is fixed: finished stages and shards are kept',
          cause: err,
        });
      }
      progress.finish(i);
      progress.report();
    }
  };
}
