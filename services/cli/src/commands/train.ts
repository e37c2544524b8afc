import { appendFile, writeFile } from 'node:fs/promises';
import type { DpoLossType, ScheduleKind, TrainObjective, TrainOptions } from '@rlhf/ml-engine';
import { defaultTrainOptions } from '@rlhf/ml-engine/train-defaults';
import { invalidArgument, parseIntegerIn, parseNumberIn } from '@rlhf/platform/core';
import { Argument, type Command, Option } from 'commander';
import { ProgressBar } from '../progress.js';

interface TrainFlags {
  model: string;
  reference?: string;
  data: string;
  out: string;
  optimizer: 'adamw' | 'sgd';
  lr?: string;
  epochs?: string;
  steps?: string;
  batchSize: string;
  gradAccum: string;
  schedule: ScheduleKind;
  warmupRatio: string;
  weightDecay: string;
  maxGradNorm: string;
  beta: string;
  loss: DpoLossType;
  labelSmoothing: string;
  nllWeight: string;
  seed: string;
  shuffle: boolean;
  saveEvery: string;
  metricsLog?: string;
  overwrite?: boolean;
}

const d = defaultTrainOptions;

export function trainOptionsFrom(objective: TrainObjective, f: TrainFlags): TrainOptions {
  if (f.epochs !== undefined && f.steps !== undefined)
    throw invalidArgument('--steps', 'give --epochs or --steps, not both', 'drop one of them');
  if (f.reference !== undefined && objective !== 'dpo')
    throw invalidArgument(
      '--reference',
      `only DPO uses a reference model, not ${objective}`,
      'drop --reference',
    );
  const options: TrainOptions = {
    objective,
    optimizer: f.optimizer,
    lr: parseNumberIn(f.lr ?? String(objective === 'dpo' ? 5e-7 : d.lr), '--lr', 1e-12, 100),
    epochs:
      f.epochs === undefined
        ? objective === 'dpo'
          ? 2
          : d.epochs
        : parseNumberIn(f.epochs, '--epochs', 1e-6, 1e6),
    batchSize: parseIntegerIn(f.batchSize, '--batch-size', 1, 1_000_000),
    gradAccum: parseIntegerIn(f.gradAccum, '--grad-accum', 1, 1_000_000),
    schedule: f.schedule,
    warmupRatio: parseNumberIn(f.warmupRatio, '--warmup-ratio', 0, 1),
    weightDecay: parseNumberIn(f.weightDecay, '--weight-decay', 0, 10),
    maxGradNorm: parseNumberIn(f.maxGradNorm, '--max-grad-norm', 0, 1e9),
    dpo: {
      beta: parseNumberIn(f.beta, '--beta', 1e-9, 1e6),
      lossType: f.loss,
      labelSmoothing: parseNumberIn(f.labelSmoothing, '--label-smoothing', 0, 0.5),
      nllWeight: parseNumberIn(f.nllWeight, '--nll-weight', 0, 1e6),
    },
    seed: parseIntegerIn(f.seed, '--seed', 0, 2 ** 32 - 1),
    shuffle: f.shuffle,
  };
  if (f.steps !== undefined) options.maxSteps = parseIntegerIn(f.steps, '--steps', 1, 1e9);
  if (options.gradAccum > options.batchSize)
    throw invalidArgument(
      '--grad-accum',
      `${options.gradAccum} is more than --batch-size ${options.batchSize}`,
      'use at most one micro-batch per example',
    );
  return options;
}

function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  return Math.abs(x) >= 100 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2) : x.toFixed(3);
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .summary('train a model: SFT, reward model, preference model or DPO')
    .description(
      [
        'Train from a JSONL dataset and write a new model directory (atomically, with training_state/ and',
        'training_log.jsonl inside). Objectives and the data each takes:',
        '  sft  {"prompt","completion"} (loss on the completion), {"text"}, or {"messages"} (loss on the last,',
        '       assistant message); policy model',
        '  rm   {"prompt","chosen","rejected"}: Bradley-Terry; model with a scalar head',
        '  pm   {"prompt","chosen","rejected"}: pairwise preference model (A/B token, order randomised)',
        '  dpo  {"prompt","chosen","rejected"}: DPO against --reference (default: the starting policy)',
        'Token-id fields (prompt_ids, completion_ids, chosen_ids, rejected_ids) are used verbatim. Pairs may be',
        'conversational (TRL): "prompt" a list of messages, "chosen" and "rejected" one assistant message each.',
        "Messages go through the model's chat template (tokenizer_config.json), or are joined by newlines.",
        'Interrupted runs continue from <out>.partial when the same command runs again (see --save-every).',
      ].join('\n'),
    )
    .addArgument(new Argument('<objective>', 'what to train').choices(['sft', 'rm', 'pm', 'dpo']))
    .requiredOption('--model <DIR>', 'starting model directory')
    .option('--reference <DIR>', 'DPO reference model (default: the starting policy)')
    .requiredOption('--data <FILE>', 'training data, JSONL or Parquet in a TRL format (docs/DATA.md)')
    .requiredOption('--out <DIR>', 'output model directory')
    .addOption(new Option('--optimizer <NAME>', 'optimizer').choices(['adamw', 'sgd']).default('adamw'))
    .option('--lr <X>', `peak learning rate (default ${d.lr}; DPO 5e-7 as in the paper)`)
    .option('--epochs <N>', `passes over the data (default ${d.epochs}; DPO 2)`)
    .option('--steps <N>', 'optimizer steps instead of epochs')
    .option('--batch-size <N>', 'examples (or pairs) per optimizer step', String(d.batchSize))
    .option('--grad-accum <N>', 'micro-batches per optimizer step', String(d.gradAccum))
    .addOption(
      new Option('--schedule <NAME>', 'learning-rate schedule')
        .choices(['cosine', 'linear', 'constant'])
        .default(d.schedule),
    )
    .option('--warmup-ratio <X>', 'share of steps for linear warmup', String(d.warmupRatio))
    .option('--weight-decay <X>', 'decoupled weight decay', String(d.weightDecay))
    .option('--max-grad-norm <X>', 'global gradient-norm clip (0 = off)', String(d.maxGradNorm))
    .option('--beta <X>', 'DPO beta', String(d.dpo.beta))
    .addOption(
      new Option('--loss <NAME>', 'DPO loss').choices(['sigmoid', 'ipo', 'hinge']).default(d.dpo.lossType),
    )
    .option('--label-smoothing <X>', 'DPO label smoothing (sigmoid loss)', String(d.dpo.labelSmoothing))
    .option(
      '--nll-weight <X>',
      'weight of the NLL term on chosen responses (RPO; 0 = plain DPO)',
      String(d.dpo.nllWeight),
    )
    .option('--seed <N>', 'seed of the data order', String(d.seed))
    .option('--no-shuffle', 'keep the data in file order')
    .option('--save-every <N>', 'checkpoint to <out>.partial every N steps (0 = off)', '50')
    .option('--metrics-log <FILE>', 'append one JSON line per step here (default <out>.metrics.jsonl)')
    .option('--overwrite', 'replace an existing output directory')
    .action(async (objective: TrainObjective, f: TrainFlags) => {
      const options = trainOptionsFrom(objective, f);
      const log = f.metricsLog ?? `${f.out}.metrics.jsonl`;
      await writeFile(log, '');
      let bar: ProgressBar | null = null;
      const controller = new AbortController();
      const onSignal = (): void => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const { runTraining } = await import('@rlhf/ml-engine');
        const result = await runTraining({
          modelDir: f.model,
          ...(f.reference ? { referenceDir: f.reference } : {}),
          dataFile: f.data,
          outDir: f.out,
          options,
          overwrite: f.overwrite === true,
          saveEvery: parseIntegerIn(f.saveEvery, '--save-every', 0, 1e9),
          signal: controller.signal,
          onInfo: (m) => process.stderr.write(`${m}\n`),
          onStep: async (r) => {
            bar ??= new ProgressBar({ label: `train ${objective}`, total: r.totalSteps, unit: 'step' });
            const m = r.metrics;
            const extra =
              objective === 'dpo'
                ? ` margin ${fmt(m.margin)} acc ${fmt(m.accuracy)}`
                : objective === 'rm'
                  ? ` acc ${fmt(m.accuracy)}`
                  : '';
            bar.update(
              r.step,
              `loss ${fmt(m.loss)}${extra} lr ${fmt(r.lr)} ${Math.round(r.tokensPerSecond)} tok/s`,
            );
            await appendFile(log, `${JSON.stringify(r)}\n`);
          },
        });
        const last = result.history.at(-1);
        const summary = `${result.history.length} steps over ${result.examples} examples${result.truncated ? ` (${result.truncated} truncated)` : ''}, final loss ${fmt(last?.metrics.loss)}`;
        if (result.stopped) {
          (bar as ProgressBar | null)?.done(
            `stopped; checkpoint in ${f.out}.partial, run the same command to continue`,
          );
          process.exitCode = 130;
        } else if (bar) (bar as ProgressBar).done(`${summary}; wrote ${f.out}`);
        else process.stderr.write(`train ${objective}: nothing to do; wrote ${f.out}\n`);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
