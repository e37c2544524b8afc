/**
 * The prepare step of a train stage handed to a Kubeflow TrainJob (`rlhf stage train --trainjob-step
 * prepare`): what the TrainJob trains on, written to the iteration's directory on the shared volume before
 * the controller creates the TrainJob (trainjob-files.ts says what is written, and what the import reads).
 */
import { stageTable, type TrainInputs, type TrainJobPaths } from '@rlhf/workflow';
import type { RunContext } from './run-context.js';
import { stageFunctions } from './stage-functions.js';
import { driveTable } from './table-driver.js';
import { writeTrainJobInputs } from './trainjob-files.js';

/**
 * The prepare step of iteration `t`: the run's records up to the iteration's pairs (recorded already, so
 * nothing runs), the train stage's inputs resolved from them as the table resolves them, and its files
 * written. Returns the pair count.
 */
export async function prepareTrainJob(ctx: RunContext, t: number, paths: TrainJobPaths): Promise<number> {
  const done = await driveTable(ctx, stageTable, stageFunctions, { iteration: t, stage: 'pair' });
  const def = stageTable.find((d) => d.phase === 'iteration' && d.name === 'train');
  if (!def) throw new Error('the stage table has no train stage');
  const at = (i: number) => {
    const r = done.results.get(i);
    if (!r) throw new Error(`no results of iteration ${i}`);
    return r;
  };
  const inputs = def.resolve({ spec: ctx.spec, run: ctx.run, iteration: t, at }) as TrainInputs;
  if (inputs.pairs === 0) return 0;
  return writeTrainJobInputs(ctx.deps.store, inputs, paths);
}
