/**
 * The rlhf.v1 contract: the generated messages and gRPC service definitions (ts-proto, in ../gen, never
 * edited by hand: `npm run proto:gen`), and where the .proto sources are for server reflection.
 */
import { fileURLToPath } from 'node:url';

export * from '../gen/rlhf/v1/common.js';
export * from '../gen/rlhf/v1/dpo_trainer.js';
export * from '../gen/rlhf/v1/events.js';
export * from '../gen/rlhf/v1/policy_generator.js';
export * from '../gen/rlhf/v1/preference_model.js';
export * from '../gen/rlhf/v1/reward_model.js';

/** Directory the .proto imports resolve from (it holds `rlhf/v1/*.proto`). */
export const protoRoot = fileURLToPath(new URL('..', import.meta.url));

/** The contract's .proto files, relative to protoRoot. */
export const protoFiles = [
  'rlhf/v1/common.proto',
  'rlhf/v1/dpo_trainer.proto',
  'rlhf/v1/events.proto',
  'rlhf/v1/policy_generator.proto',
  'rlhf/v1/preference_model.proto',
  'rlhf/v1/reward_model.proto',
];
