import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { referenceRecipe } from '@rlhf/pipeline/recipe';
import { invalidArgument, parseIntegerIn } from '@rlhf/platform/core';
import type { Command } from 'commander';
import { ProgressBar } from '../progress.js';

interface QuickstartFlags {
  out: string;
  seed: string;
  iterations: string;
  variant: 'a' | 'b' | 'g';
  sftEpochs: string;
  quick?: boolean;
  overwrite?: boolean;
}

const fmt = (x: number | null | undefined, digits = 3): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);

export function registerQuickstart(program: Command): void {
  program
    .command('quickstart')
    .summary('run the reference task end to end in this process (data, SFT, RM, online DPO)')
    .description(
      [
        'The reference task (docs/ARCHITECTURE.md) from nothing, with embedded defaults and no cluster: synthetic',
        'movie reviews, a tokenizer, an SFT policy, a Bradley-Terry reward model on simulated annotator labels,',
        'the length penalty fitted on SFT samples, then online iterative DPO (Algorithm 2) with evaluation after',
        'every iteration. Writes summary.json, the datasets (data/) and the models to --out: models/policy (the',
        "best iteration's policy by validation reward) and models/reward-model, model directories that",
        '`rlhf generate --model` and `rlhf model export` read.',
        'Variants: b = reward model with the fitted length penalty (default), a = without it, g = judged by the gold.',
        "This runs every stage in one process; the platform's way (stage workers over NATS) is `rlhf run -f examples/quickstart.yaml`.",
      ].join('\n'),
    )
    .option('--out <DIR>', 'output directory', 'runs/quickstart')
    .option('--seed <N>', 'seed of data, models and sampling', '1')
    .option('--iterations <N>', 'online iterations', '3')
    .option('--variant <V>', 'a, b or g (see above)', 'b')
    .option('--sft-epochs <N>', 'SFT epochs', String(referenceRecipe.sft.epochs))
    .option('--quick', 'tiny data and models: a smoke test in seconds, not meaningful numbers')
    .option('--overwrite', 'replace an existing output directory')
    .action(async (f: QuickstartFlags) => {
      const { saveModelDir, writeDirectoryAtomically } = await import('@rlhf/ml-engine');
      const { bestIterationOf } = await import('@rlhf/orchestrator/summary-types');
      const { defaultLoopConfig, prepareReferenceTask, runLocalIterations } = await import('@rlhf/pipeline');
      if (!['a', 'b', 'g'].includes(f.variant))
        throw invalidArgument('--variant', `unknown variant "${f.variant}"`, 'use a, b or g');
      const seed = parseIntegerIn(f.seed, '--seed', 0, 2 ** 31);
      const iterations = parseIntegerIn(f.iterations, '--iterations', 1, 100);
      const sftEpochs = parseIntegerIn(f.sftEpochs, '--sft-epochs', 1, 1000);
      const say = (line: string): void => {
        process.stderr.write(`${line}\n`);
      };
      const bars = new Map<string, ProgressBar>();
      const setup = await prepareReferenceTask({
        seed,
        sftEpochs,
        quick: f.quick === true,
        onStage: (stage, d) => say(`${stage}: ${JSON.stringify(d)}`),
        onStep: (stage, r) => {
          let bar = bars.get(stage);
          if (!bar) {
            bar = new ProgressBar({ label: stage, total: r.totalSteps, unit: 'step' });
            bars.set(stage, bar);
          }
          bar.update(r.step, `loss ${fmt(r.metrics.loss)}`);
          if (r.step === r.totalSteps) bar.done(`${r.step} steps, loss ${fmt(r.metrics.loss)}`);
        },
      });
      const lambda = f.variant === 'b' ? setup.lengthFit.lambda : 0;
      const result = await runLocalIterations({
        policy: setup.policy,
        rewardModel: setup.rewardModel,
        prompts: setup.prompts,
        evalPrompts: setup.evalPrompts,
        oracle: setup.oracle,
        config: {
          ...defaultLoopConfig,
          seed,
          iterations,
          promptsPerIteration: f.quick ? 64 : 256,
          judge: f.variant === 'g' ? 'gold' : 'reward',
          lengthPenalty: lambda,
        },
        onIteration: (r) =>
          say(
            `iteration ${r.iteration}: gold ${fmt(r.eval.goldReward)} win ${fmt(r.eval.winRate)} kl ${fmt(r.eval.kl, 2)} length ${fmt(r.eval.meanLength, 1)} grammatical ${fmt(r.eval.grammaticalRate, 2)} pairs ${r.pairs} dpo acc ${fmt(r.dpoAccuracy, 2)}`,
          ),
      });
      // The same rule as `rlhf run`: the highest validation (proxy) reward, pi_0 included, ties to the earlier.
      const best = bestIterationOf({
        initial: { iteration: 0, ...result.initial },
        iterations: result.iterations.map((r) => ({ iteration: r.iteration, ...r.eval })),
      });
      const bestWeights = best ? result.policies[best - 1] : undefined;
      const summary = {
        variant: f.variant,
        seed,
        rewardModel: { heldOutAccuracy: setup.rewardModelAccuracy, labelBayesRate: setup.bayesRate },
        lengthPenalty: { lambda, fit: setup.lengthFit },
        initial: result.initial,
        iterations: result.iterations,
        bestIterationByProxyReward: best,
      };
      const files: Record<string, string> = { 'summary.json': `${JSON.stringify(summary, null, 2)}\n` };
      for (const [name, text] of Object.entries(setup.files)) files[join('data', name)] = text;
      await writeDirectoryAtomically(
        f.out,
        async (dir) => {
          for (const [name, text] of Object.entries(files)) {
            await mkdir(dirname(join(dir, name)), { recursive: true });
            await writeFile(join(dir, name), text);
          }
          const policy = { ...setup.policy, ...(bestWeights ? { weights: bestWeights } : {}) };
          await saveModelDir(join(dir, 'models', 'policy'), policy);
          await saveModelDir(join(dir, 'models', 'reward-model'), setup.rewardModel);
        },
        { overwrite: f.overwrite === true },
      );
      say(
        `wrote ${f.out}/summary.json and ${f.out}/models/policy (iteration ${best ?? '-'}; initial gold ${fmt(result.initial.goldReward)}, final gold ${fmt(result.iterations.at(-1)?.eval.goldReward)})`,
      );
    });
}
