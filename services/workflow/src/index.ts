export * from './policy-metrics.js';
export * from './records.js';
export * from './run-layout.js';
export * from './stage-def.js';
export * from './stage-results.js';
export * from './stage-table.js';
export * from './summary-types.js';
export * from './units.js';
