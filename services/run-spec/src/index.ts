export * from './crd.js';
export * from './parse-run.js';
export * from './placement-check.js';
export * from './placement-policy.js';
export * from './rlhf-run-schema.js';
export * from './schema-types.js';
export * from './types.js';
export * from './validate.js';
