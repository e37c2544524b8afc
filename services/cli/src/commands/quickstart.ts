import { resolve } from 'node:path';
import { referenceRecipe } from '@rlhf/pipeline/recipe';
import { invalidArgument, type LogLevel, parseIntegerIn } from '@rlhf/platform/core';
import type { Command } from 'commander';
import { type QuickstartVariant, quickstartRun, quickstartVariants } from '../quickstart-run.js';
import { terminalUi } from './run.js';

interface QuickstartFlags {
  out: string;
  seed: string;
  iterations: string;
  variant: string;
  sftEpochs?: string;
  quick?: boolean;
  overwrite?: boolean;
  logLevel: string;
}

export function registerQuickstart(program: Command): void {
  program
    .command('quickstart')
    .summary('run the reference task end to end in this process (data, SFT, RM, online DPO), no NATS')
    .description(
      [
        'The reference task from nothing, with embedded defaults and no cluster: the RLHFRun of',
        'examples/quickstart.yaml (synthetic movie reviews, a tokenizer, an SFT policy, a Bradley-Terry reward',
        'model on simulated annotator labels, the length penalty fitted on SFT samples, then online iterative DPO',
        'with evaluation after every iteration), run by the same stage functions as `rlhf run`, each shard handed',
        "to the services' shard handlers in this process instead of over NATS: same seed, same figures.",
        'Interrupt it at any point and run the same command again: finished stages are kept (<out>/state,',
        '<out>/objects) and the run continues. At the end --out holds what `rlhf run` writes: summary.json,',
        "report.html, charts/*.svg and the models: models/policy (the best iteration's policy), models/initial-policy",
        '(pi_0, unless it is the best) and models/reward-model, model directories that `rlhf generate`, `rlhf eval`',
        'and `rlhf model export` read.',
        'Variants set the judge: b = reward model with the fitted length penalty (default), a = reward model',
        'without it, g = the gold reward of the task.',
        'The same run with stage workers over NATS: `rlhf run -f examples/quickstart.yaml`.',
      ].join('\n'),
    )
    .option('--out <DIR>', 'output directory', 'runs/quickstart')
    .option('--seed <N>', 'seed of data, models and sampling', '1')
    .option('--iterations <N>', 'online iterations', '3')
    .option('--variant <V>', 'a, b or g (see above)', 'b')
    .option('--sft-epochs <N>', `SFT epochs (default ${referenceRecipe.sft.epochs}, 1 with --quick)`)
    .option('--quick', 'tiny data and models: a smoke test in seconds, not meaningful numbers')
    .option('--overwrite', 'forget the finished stages in --out and start over (a changed setting needs it)')
    .option('--log-level <LEVEL>', 'log level of this process', 'warn')
    .action(async (f: QuickstartFlags) => {
      const { runInProcess } = await import('@rlhf/orchestrator');
      const { createLogger } = await import('@rlhf/platform');
      const { loadInProcessServices } = await import('../service-registry.js');
      if (!(quickstartVariants as readonly string[]).includes(f.variant))
        throw invalidArgument('--variant', `unknown variant "${f.variant}"`, 'use a, b or g');
      const run = quickstartRun({
        seed: parseIntegerIn(f.seed, '--seed', 0, 2 ** 31),
        iterations: parseIntegerIn(f.iterations, '--iterations', 1, 100),
        variant: f.variant as QuickstartVariant,
        quick: f.quick === true,
        ...(f.sftEpochs === undefined
          ? {}
          : { sftEpochs: parseIntegerIn(f.sftEpochs, '--sft-epochs', 1, 1000) }),
      });
      const out = resolve(f.out);
      const logger = createLogger('rlhf-quickstart', { level: f.logLevel as LogLevel });
      const ui = terminalUi();
      ui.say(`quickstart: variant ${f.variant}, ${run.spec.iterations} iterations, output in ${out}`);
      const summary = await runInProcess({
        run,
        out,
        ...(f.overwrite ? { restart: true } : {}),
        changedSpecFix: 'run it again with --overwrite to start over, or pass another --out',
        ui,
        logger,
        services: (host) => loadInProcessServices(host, logger),
      });
      ui.say(
        `done: best iteration ${summary.bestIteration ?? '-'}, its policy in ${out}/models/policy; wrote ${out}/summary.json and ${out}/report.html`,
      );
    });
}
