/**
 * `rlhf`: the platform's command line. Each command lives in its own file under commands/, and program.ts
 * puts them in one table; errors end as one line naming the field and the fix (exit 2), never as a stack
 * trace.
 */

import { exitWithError } from '@rlhf/platform/core';
import { CommanderError } from 'commander';
import { buildProgram } from './program.js';

const program = buildProgram();

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and --version end here with exit code 0; usage errors were already printed by commander.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  exitWithError(err);
}
