#!/usr/bin/env node
// Entry point of the preference-model container: `node --import tsx services/preference-model/src/main.ts --port 50051`.
import { runServiceMain } from '@rlhf/platform';
import { protoFiles, protoRoot } from '@rlhf/proto';
import { preferenceModelService } from './index.js';

await runServiceMain(preferenceModelService, process.argv.slice(2), {
  files: protoFiles,
  includeDirs: [protoRoot],
});
