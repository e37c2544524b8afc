/**
 * One RLHFRun from start to end (Algorithm 2 of the paper): the stage table driven in order, each stage
 * skipped when its KV record exists, so running the same run again after a crash continues where it
 * stopped, and with the same seed ends with the same metrics. A cluster stage Job runs the same loop up to
 * its unit's last record.
 */
import { type RunSummary, type StopPoint, stageTable } from '@rlhf/workflow';
import type { RunContext } from './run-context.js';
import { runSummary } from './run-summary.js';
import { stageFunctions } from './stage-functions.js';
import { driveTable } from './table-driver.js';

/** The whole run; resolves with its summary. */
export async function reconcileRun(ctx: RunContext): Promise<RunSummary> {
  const startedAt = new Date().toISOString();
  return runSummary(ctx, await driveTable(ctx, stageTable, stageFunctions), startedAt);
}

/** The run up to `until`; resolves with the summary when that was the run's last record, else null. */
export async function reconcileUntil(ctx: RunContext, until: StopPoint): Promise<RunSummary | null> {
  const startedAt = new Date().toISOString();
  const done = await driveTable(ctx, stageTable, stageFunctions, until);
  return done.done ? runSummary(ctx, done, startedAt) : null;
}
