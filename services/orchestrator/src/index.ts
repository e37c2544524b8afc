export { type ExperimentOptions, type ExperimentResult, runExperiment } from './experiment/run-experiment.js';
export * from './experiment/variant-runs.js';
export * from './file-state-kv.js';
export * from './in-process-executor.js';
export * from './judged-pairs.js';
export * from './reconcile-run.js';
export * from './report/index.js';
export type { RunContext, StageUi } from './run-context.js';
export {
  type InProcessHost,
  type InProcessRunOptions,
  type InProcessServices,
  runInProcess,
} from './run-in-process.js';
export { type LocalRunOptions, runLocal, workerPlan } from './run-local.js';
export { runStageProcess, type StageProcessOptions } from './run-stage.js';
export { RunState, type StateKv } from './run-state.js';
export * from './shard-executor.js';
export type { StageContext } from './stage-context.js';
export { stageFunctions } from './stage-functions.js';
export { driveTable, type StageFn, type StageFns, type TableRun } from './table-driver.js';
export {
  type TrlAgreement,
  type TrlPreferenceRow,
  trlAgreement,
  trlIds,
  trlPreferenceJsonl,
  trlPreferenceRow,
} from './trl-pairs.js';
