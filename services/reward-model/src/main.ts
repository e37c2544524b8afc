#!/usr/bin/env node
// Entry point of the reward-model container: `node --import tsx services/reward-model/src/main.ts --port 50051`.
import { runServiceMain } from '@rlhf/platform';
import { protoFiles, protoRoot } from '@rlhf/proto';
import { rewardModelService } from './index.js';

await runServiceMain(rewardModelService, process.argv.slice(2), {
  files: protoFiles,
  includeDirs: [protoRoot],
});
