export * from './eval-rows.js';
export * from './evaluation.js';
export * from './length-penalty.js';
export * from './pairs.js';
export * from './reference-recipe.js';
export * from './results-table.js';
export * from './step-metrics.js';
