/**
 * The rlhf.v1 contract for TypeScript consumers: every generated message, enum and gRPC service definition
 * (ts-proto output in ../gen, never edited by hand; `npm run proto:gen` after editing a .proto file), plus
 * where the .proto sources are at runtime, for @grpc/proto-loader and server reflection:
 *
 *   loadSync(protoFiles, { includeDirs: [protoRoot] })
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export * from '../gen/rlhf/v1/common.js';
export * from '../gen/rlhf/v1/events.js';
export * from '../gen/rlhf/v1/policy_generator.js';
export * from '../gen/rlhf/v1/preference_model.js';
export * from '../gen/rlhf/v1/reward_model.js';
export * from '../gen/rlhf/v1/stage_work.js';
export * from '../gen/rlhf/v1/training.js';
export * from '../gen/rlhf/v1/training_jobs.js';

/** Absolute path of the directory the .proto imports resolve from (it holds `rlhf/v1/*.proto`). */
export const protoRoot: string = fileURLToPath(new URL('..', import.meta.url));

/** The proto package's directory below protoRoot. */
export const protoPackageDir = 'rlhf/v1';

/**
 * Every .proto file of the contract, relative to protoRoot and sorted (`rlhf/v1/common.proto`, ...).
 * Relative names matter: they are the names the files import each other by, so a loader given these and
 * `includeDirs: [protoRoot]` reads each file once. Listed from the directory, so a new file is never missed.
 */
export const protoFiles: string[] = readdirSync(new URL(`../${protoPackageDir}/`, import.meta.url))
  .filter((name) => name.endsWith('.proto'))
  .sort()
  .map((name) => `${protoPackageDir}/${name}`);
