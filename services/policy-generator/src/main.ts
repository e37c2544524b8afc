#!/usr/bin/env node
// Entry point of the policy-generator container: `node --import tsx services/policy-generator/src/main.ts --port 50051`.
import { runServiceMain } from '@rlhf/platform';
import { protoFiles, protoRoot } from '@rlhf/proto';
import { policyGeneratorService } from './index.js';

await runServiceMain(policyGeneratorService, process.argv.slice(2), {
  files: protoFiles,
  includeDirs: [protoRoot],
});
