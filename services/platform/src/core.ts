/**
 * The parts of the platform package that load no other package: errors, flag and environment parsing, the
 * serve flags, exiting with an error. For code that must load fast and may never need the rest (the CLI's
 * command table); everything here is also exported from `@rlhf/platform`.
 */
export * from './config/artifact-flags.js';
export * from './config/env.js';
export * from './config/nats-flags.js';
export * from './config/parse.js';
export * from './config/serve-flags.js';
export * from './config/training-bounds.js';
export * from './errors.js';
export * from './exit.js';
