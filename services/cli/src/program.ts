/**
 * The `rlhf` command table: every command with its flags and help. Registering loads no engine, transport
 * or Kubernetes code (each command imports what it runs when it runs), so `rlhf --help` and a worker's
 * `rlhf serve <service>` start fast; test/static/cli-startup.test.ts holds that.
 */
import { Command } from 'commander';
import { registerBench } from './commands/bench.js';
import { registerController } from './commands/controller.js';
import { registerData } from './commands/data.js';
import { registerEval } from './commands/eval.js';
import { registerExperiment } from './commands/experiment.js';
import { registerGenerate } from './commands/generate.js';
import { registerHealth } from './commands/health.js';
import { registerJudge } from './commands/judge.js';
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

export function buildProgram(): Command {
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
  registerJudge(program);
  registerEval(program);
  registerModel(program);
  registerTokenize(program);
  return program;
}
