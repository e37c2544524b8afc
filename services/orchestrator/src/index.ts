export * from './reconcile-run.js';
export * from './report/index.js';
export type { RunContext, StageUi } from './run-context.js';
export * from './run-layout.js';
export { type LocalRunOptions, runLocal, workerPlan } from './run-local.js';
export { RunState } from './stage-records.js';
