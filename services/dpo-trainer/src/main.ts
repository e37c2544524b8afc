#!/usr/bin/env node
// Entry point of the dpo-trainer container: `node --import tsx services/dpo-trainer/src/main.ts --port 50051`.
import { runServiceMain } from '@rlhf/platform';
import { protoFiles, protoRoot } from '@rlhf/proto';
import { dpoTrainerService } from './index.js';

await runServiceMain(dpoTrainerService, process.argv.slice(2), {
  files: protoFiles,
  includeDirs: [protoRoot],
});
