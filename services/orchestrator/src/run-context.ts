/**
 * What every stage of a run needs: the run's spec and identity, NATS and the artifact store, the KV stage
 * records, and the terminal UI. `once` makes a stage idempotent: a stage with a record is not run again.
 */
import type { ArtifactStore, Logger } from '@rlhf/platform';
import type { RlhfRunSpec } from '@rlhf/run-spec';
import type { RunRef } from './run-layout.js';
import type { ShardExecutor } from './shard-executor.js';
import type { RunState, StageRecord } from './stage-records.js';

export interface StageUi {
  /** A stage started (or resumed); returns the progress callback of its bar. */
  start(label: string): (done: number, total: number, unit: string) => void;
  /** A stage ended; `line` sums it up. */
  finish(label: string, line: string): void;
  /** A done stage skipped on resume. */
  skip(label: string): void;
  say(line: string): void;
}

/** Where a partial run stops: after this stage's record exists, before the next stage starts. */
export interface StopPoint {
  iteration: number;
  stage: string;
}

/** Thrown by `once` when the run reached its stop point (a stage Job's work is done). */
export class StopPointReached extends Error {
  constructor(readonly at: StopPoint) {
    super(`stopped after iteration ${at.iteration} ${at.stage}`);
    this.name = 'StopPointReached';
  }
}

export interface RunContext {
  run: RunRef;
  spec: RlhfRunSpec;
  /** Where artifacts are read and written, and the run's log; the same whichever executor runs the shards. */
  deps: { store: ArtifactStore; logger: Logger };
  /** Runs a sharded stage's shards (over NATS, or in this process). */
  exec: ShardExecutor;
  state: RunState;
  ui: StageUi;
  /** Worker processes per sharded stage (sets the shard count). */
  workers: number;
  /** Run only up to this stage (a cluster stage Job); the whole run when absent. */
  until?: StopPoint;
  /** Set once the stop point's record exists; the next stage that would run throws StopPointReached. */
  untilReached?: boolean;
}

const isStopPoint = (ctx: RunContext, iteration: number, stage: string) =>
  ctx.until?.iteration === iteration && ctx.until.stage === stage;

export async function once<T extends Record<string, unknown>>(
  ctx: RunContext,
  iteration: number,
  stage: string,
  work: () => Promise<T>,
): Promise<T> {
  const label = iteration === 0 ? stage : `iteration ${iteration} ${stage}`;
  const known = await ctx.state.stage(iteration, stage);
  if (known) {
    if (isStopPoint(ctx, iteration, stage)) ctx.untilReached = true;
    ctx.ui.skip(label);
    return known.result as T;
  }
  if (ctx.until && ctx.untilReached) throw new StopPointReached(ctx.until);
  const started = new Date();
  const result = await work();
  const finished = new Date();
  const record: StageRecord = {
    stage,
    iteration,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    seconds: (finished.getTime() - started.getTime()) / 1000,
    result: { ...result, seconds: (finished.getTime() - started.getTime()) / 1000 },
  };
  await ctx.state.finish(record);
  if (isStopPoint(ctx, iteration, stage)) ctx.untilReached = true;
  return record.result as T;
}

/** Splits `rows` into shards of at most `size` rows, at least `min` shards when there are enough rows. */
export function shardRanges(
  rows: number,
  size: number,
  min: number,
): Array<{ first: number; count: number }> {
  const count = Math.max(Math.min(min, rows), Math.ceil(rows / size), 1);
  const out: Array<{ first: number; count: number }> = [];
  for (let i = 0; i < count; i++) {
    const first = Math.floor((i * rows) / count);
    const end = Math.floor(((i + 1) * rows) / count);
    if (end > first) out.push({ first, count: end - first });
  }
  return out;
}
