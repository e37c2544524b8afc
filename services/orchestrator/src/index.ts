export { type ExperimentOptions, type ExperimentResult, runExperiment } from './experiment/run-experiment.js';
export * from './experiment/variant-runs.js';
export * from './file-state-kv.js';
export * from './in-process-executor.js';
export * from './judged-pairs.js';
export * from './reconcile-run.js';
export * from './report/index.js';
export { type RunContext, type StageUi, type StopPoint, StopPointReached } from './run-context.js';
export {
  type InProcessHost,
  type InProcessRunOptions,
  type InProcessServices,
  runInProcess,
} from './run-in-process.js';
export * from './run-layout.js';
export { type LocalRunOptions, runLocal, workerPlan } from './run-local.js';
export { runStageProcess, type StageProcessOptions } from './run-stage.js';
export * from './shard-executor.js';
export * from './stage-plan.js';
export type {
  ErrorRecord,
  IterationRecord,
  PlanRecord,
  StageRecord,
  SummaryRecord,
} from './stage-records.js';
export { RunState } from './stage-records.js';
