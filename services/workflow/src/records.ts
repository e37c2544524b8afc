/**
 * What a run records in JetStream KV, as the stage drivers write it and the controller reads it: a stage is
 * done exactly when its record exists, and the record is written only after every output it names is
 * stored. The KV keys are in run-layout.ts.
 */
import { createHash } from 'node:crypto';
import type { RlhfRun } from '@rlhf/run-spec';
import type { PolicyMetrics } from './policy-metrics.js';

export interface StageRecord<R = Record<string, unknown>> {
  stage: string;
  iteration: number;
  startedAt: string;
  finishedAt: string;
  seconds: number;
  /** What the stage produced (its table entry's result type) and how long it took. */
  result: R & { seconds?: number };
}

/** What iteration t measured (t = 0 is pi_0), written after its evaluation; read by the controller. */
export interface IterationRecord extends PolicyMetrics {
  iteration: number;
  pairs?: number;
  dpoLoss?: number | null;
  dpoAccuracy?: number | null;
  finishedAt: string;
}

/** What setup resolved for the iterations (written once, before pi_0's evaluation). */
export interface PlanRecord {
  policy: string;
  prompts: string;
  evalPrompts?: string;
  rewardModel?: string;
  lengthPenalty: number;
}

export interface SummaryRecord {
  summary: string;
  report: string;
  bestIteration: number | null;
  finishedAt: string;
}

/** The last failure of a stage process, for the controller's Failed condition. */
export interface ErrorRecord {
  iteration: number;
  stage: string;
  message: string;
  at: string;
}

export interface RunRecord {
  specDigest: string;
  /** This incarnation of the run (new on a fresh start or --restart), see RunRef.epoch. */
  epoch?: string;
  phase: 'Running' | 'Succeeded' | 'Failed';
  message: string;
  updatedAt: string;
}

/** The run record's digest of a spec: a resumed run must have the spec its finished stages were made with. */
export function specDigest(run: RlhfRun): string {
  return createHash('sha256').update(JSON.stringify(run.spec)).digest('hex').slice(0, 16);
}
