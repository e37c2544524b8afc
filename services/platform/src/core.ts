/**
 * The parts of the platform package that load no other package: errors, flag and environment parsing, the
 * serve flags, exiting with an error, and the NATS subject, bucket and key names. For code that must load
 * fast or must not load a transport (the CLI's command table, the workflow table); everything here is also
 * exported from `@rlhf/platform`.
 */
export * from './config/artifact-flags.js';
export * from './config/env.js';
export * from './config/nats-flags.js';
export * from './config/parse.js';
export * from './config/serve-flags.js';
export * from './config/training-bounds.js';
export * from './errors.js';
export * from './exit.js';
export * from './nats/subjects.js';
