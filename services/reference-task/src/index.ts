export * from './annotators.js';
export * from './gold.js';
export * from './grammar.js';
export * from './synth.js';
export * from './task-oracle.js';
