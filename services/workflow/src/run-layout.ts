/**
 * Where a run keeps things, defined once: artifact URIs (deterministic, so a stage run again writes the
 * same keys and a redelivered shard overwrites its own output) and JetStream KV keys of stage records.
 */
import { buckets, runRecordKey } from '@rlhf/platform/core';

export interface RunRef {
  namespace: string;
  name: string;
  /**
   * This incarnation of the run (a fresh start or the RLHFRun's uid): part of every shard's message id, so
   * JetStream's duplicate window drops a resumed run's re-publishes but never a restarted run's shards.
   */
  epoch?: string;
}

/** Artifact prefix of a run: nats-obj://rlhf-artifacts/runs/<ns>/<run>. */
export function runBase(run: RunRef): string {
  return `nats-obj://${buckets.artifacts}/runs/${run.namespace}/${run.name}`;
}

export function stageDir(run: RunRef, iteration: number, stage: string): string {
  return `${runBase(run)}/iter-${iteration}/${stage}`;
}

export function shardInputUri(run: RunRef, iteration: number, stage: string, shard: number): string {
  return `${stageDir(run, iteration, stage)}/input-${shard}.jsonl`;
}

export function shardOutputUri(run: RunRef, iteration: number, stage: string, shard: number): string {
  return `${stageDir(run, iteration, stage)}/shard-${shard}.jsonl`;
}

/** The preference pairs iteration t trains on (the pair stage writes them, the train stage reads them). */
export function pairsUri(run: RunRef, iteration: number): string {
  return `${stageDir(run, iteration, 'pair')}/pairs.jsonl`;
}

/** A model directory produced by the run (iteration 0 holds setup's models). */
export function modelUri(run: RunRef, iteration: number, name: string): string {
  return `${runBase(run)}/iter-${iteration}/models/${name}`;
}

export function dataUri(run: RunRef, file: string): string {
  return `${runBase(run)}/data/${file}`;
}

/** KV key of a stage record: <ns>.<run>.<iteration>.<stage>. */
export function stageKey(run: RunRef, iteration: number, stage: string): string {
  return `${run.namespace}.${run.name}.${iteration}.${stage}`;
}

/** KV key of the run record (the spec's digest and the run's phase). */
export function runKey(run: RunRef): string {
  return runRecordKey(run.namespace, run.name);
}
