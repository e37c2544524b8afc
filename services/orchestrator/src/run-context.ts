/**
 * What every stage of a run needs: the run's spec and identity, the artifact store, the executor of
 * sharded work, the KV stage records, and the terminal UI. The table driver (table-driver.ts) hands each
 * stage function a StageContext: this plus the iteration and the datasets read so far.
 */
import type { ArtifactStore, Logger } from '@rlhf/platform';
import type { RlhfRunSpec } from '@rlhf/run-spec';
import type { RunRef } from '@rlhf/workflow';
import type { RunState } from './run-state.js';
import type { ShardExecutor } from './shard-executor.js';

export interface StageUi {
  /** A stage started (or resumed); returns the progress callback of its bar. */
  start(label: string): (done: number, total: number, unit: string) => void;
  /** A stage ended; `line` sums it up. */
  finish(label: string, line: string): void;
  /** A done stage skipped on resume. */
  skip(label: string): void;
  say(line: string): void;
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
