/**
 * `rlhf`: the platform's command line. Each command lives in its own file under commands/ and registers
 * itself here; errors end as one line naming the field and the fix (exit 2), never as a stack trace.
 */

import { exitWithError } from '@rlhf/platform';
import { Command, CommanderError } from 'commander';
import { registerBench } from './commands/bench.js';
import { registerController } from './commands/controller.js';
import { registerData } from './commands/data.js';
import { registerExperiment } from './commands/experiment.js';
import { registerGenerate } from './commands/generate.js';
import { registerHealth } from './commands/health.js';
import { registerModel } from './commands/model.js';
import { registerQuickstart } from './commands/quickstart.js';
import { registerRun } from './commands/run.js';
import { registerServe } from './commands/serve.js';
import { registerStage } from './commands/stage.js';
import { registerTokenize } from './commands/tokenize.js';
import { registerTrain } from './commands/train.js';
import { registerValidate } from './commands/validate.js';
import { packageVersion, registerVersion } from './commands/version.js';
import { reflowingHelp } from './help-text.js';

const program = new Command('rlhf')
  .description(
    [
      'Online iterative RLHF (RLHF Workflow, arXiv 2405.07863) on one machine or on Kubernetes.',
      'Model services speak gRPC; stage work moves over NATS JetStream.',
    ].join('\n'),
  )
  .configureHelp(reflowingHelp)
  .version(packageVersion(), '-V, --version', 'print the rlhf version')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerVersion(program);
registerQuickstart(program);
registerRun(program);
registerExperiment(program);
registerServe(program);
registerHealth(program);
registerBench(program);
registerData(program);
registerTrain(program);
registerValidate(program);
registerStage(program);
registerController(program);
registerGenerate(program);
registerModel(program);
registerTokenize(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and --version end here with exit code 0; usage errors were already printed by commander.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  exitWithError(err);
}
