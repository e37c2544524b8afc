/**
 * How a sharded stage's work gets done, as the stage functions see it: given the shards (inputs, outputs,
 * parameters), return once every shard's output is stored. The NATS executor publishes the shards to the
 * services' work queues and follows their events; other executors (in one process) call the same shard
 * handlers directly. Stage functions never know which one runs them.
 */
import { type ProgressFn, runShardedStage, type StageDeps, type StageSpec } from './stage-driver.js';

export type ShardExecutor = (spec: StageSpec, onProgress?: ProgressFn) => Promise<void>;

/** Shards over NATS to the workers of the stage's service (see stage-driver.ts). */
export function natsShardExecutor(deps: StageDeps): ShardExecutor {
  return (spec, onProgress) => runShardedStage(deps, spec, onProgress);
}
