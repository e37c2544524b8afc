import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { experimentVariants } from '@rlhf/orchestrator/variant-names';
import { invalidArgument, type LogLevel, parseIntegerIn } from '@rlhf/platform/core';
import type { Command } from 'commander';
import { addNatsOptions, natsConfigOf } from '../nats-flags.js';
import { terminalUi } from './run.js';

interface ExperimentFlags {
  file?: string;
  seeds: string;
  variants: string;
  out: string;
  workers: string;
  horizon: string;
  natsUrl?: string;
  restart?: boolean;
  logLevel: string;
}

/** The default of -f as help shows it: a path relative to the working directory, not this checkout's. */
export const defaultRunFile = 'examples/quickstart.yaml';

/**
 * The file -f names when it is not given: examples/quickstart.yaml of the working directory, or, outside a
 * checkout, the one next to this package, so the command runs from any directory.
 */
export function resolveDefaultRunFile(cwd = process.cwd()): string {
  const local = resolve(cwd, defaultRunFile);
  return existsSync(local) ? local : fileURLToPath(new URL(`../../../../${defaultRunFile}`, import.meta.url));
}

function parseSeeds(list: string): number[] {
  const seeds = list.split(',').map((s) => parseIntegerIn(s.trim(), '--seeds', 0, 2 ** 31));
  if (new Set(seeds).size !== seeds.length)
    throw invalidArgument('--seeds', 'lists a seed twice', 'give each seed once');
  return seeds;
}

export function registerExperiment(program: Command): void {
  const cmd = program
    .command('experiment')
    .summary("the paper's experiment: the reference task's variants over seeds, each an `rlhf run`, tabled")
    .description(
      [
        'Runs the variants of docs/ARCHITECTURE.md, section 6, for each seed, every one an RLHFRun reconciled like `rlhf run`',
        '(stage workers over NATS, state in JetStream KV, resumable), all on one NATS:',
        '  b  online, reward-model judge, fitted length penalty: the base run -f, with its setup (always runs first)',
        '  a  online, reward-model judge, no length penalty       g  online, judged by the gold reward',
        '  p  online, preference-model tournament (b also trains the PM)',
        '  o  offline: one DPO round on best-vs-worst pairs of SFT samples, as many prompts as the online iterations',
        '  c  offline: one DPO round on as many annotator-labelled pairs (spec.pairs.dataset)',
        "Every variant of a seed starts from b's SFT policy and uses b's models and data. Each run writes",
        '<out>/s<seed>-<variant>/ (summary.json, report.html); at the end <out>/RESULTS.md holds a table like the',
        "paper's Tables 2 and 4 (gold, win rate vs SFT, KL, length, grammatical rate per iteration; means over seeds)",
        "with the goals checked at the base run's last iteration, and <out>/results.json the rows. Variants a and b run",
        "--horizon iterations (past the base run's, for the over-optimisation picture: proxy and gold reward against KL).",
        'Run the same command again to resume.',
      ].join('\n'),
    )
    .option('-f, --file <RUN.yaml>', 'the base RLHFRun (variant b; needs spec.setup)', defaultRunFile)
    .option('--seeds <LIST>', 'seeds, comma-separated (setup and sampling seed of each repetition)', '1,2,3')
    .option(
      '--variants <LIST>',
      `variants, a subset of ${experimentVariants.join(',')}`,
      experimentVariants.join(','),
    )
    .option('--out <DIR>', 'output directory', 'runs/experiment')
    .option('--workers <N>', 'worker processes per sharded stage', '1')
    .option('--horizon <N>', "iterations of variants a and b (at least the base run's)", '6')
    .option('--restart', 'forget every finished stage of these runs and start over')
    .option('--log-level <LEVEL>', "log level of this process (workers log to each run's logs/)", 'warn');
  addNatsOptions(cmd, 'use this NATS (JetStream) instead of starting one', '0s: fail at once');
  cmd.action(async (f: ExperimentFlags) => {
    const { parseVariants, runExperiment } = await import('@rlhf/orchestrator');
    const { createLogger } = await import('@rlhf/platform');
    const { parseRunYaml } = await import('@rlhf/run-spec');
    const file =
      f.file === undefined || cmd.getOptionValueSource('file') === 'default'
        ? resolveDefaultRunFile()
        : f.file;
    const seeds = parseSeeds(f.seeds);
    const variants = parseVariants(f.variants);
    const workers = parseIntegerIn(f.workers, '--workers', 1, 64);
    const horizon = parseIntegerIn(f.horizon, '--horizon', 1, 100);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw invalidArgument(
        '--file',
        `cannot read ${file}: ${(err as Error).message}`,
        'pass an RLHFRun YAML file',
      );
    }
    const base = parseRunYaml(text, file);
    const nats = natsConfigOf(f, 0);
    const out = resolve(f.out);
    const ui = terminalUi();
    ui.say(`experiment: seeds ${seeds.join(',')}, variants ${variants.join(',')}, output in ${out}`);
    const argv = ['rlhf experiment', ...process.argv.slice(3)].join(' ');
    const result = await runExperiment({
      base,
      seeds,
      variants,
      out,
      workers,
      horizon,
      ...(nats.url ? { natsUrl: nats.url, natsAuth: nats.auth } : {}),
      ...(f.restart ? { restart: true } : {}),
      ui,
      logger: createLogger('rlhf-experiment', { level: f.logLevel as LogLevel }),
      command: [process.execPath, ...process.execArgv, process.argv[1] as string],
      header: [
        `Produced by \`${argv}\` (base run ${file.startsWith(resolve('.')) ? file.slice(resolve('.').length + 1) : file}):`,
        'every variant of every seed is an RLHFRun reconciled like `rlhf run` (stage workers over NATS, state in',
        "JetStream KV); the variants of a seed share variant b's setup (data, SFT, reward and preference models,",
        'length fit). Offline variants train once on as many pairs as the online ones use in total; they are',
        'listed at the last online iteration. Means over seeds.',
      ],
    });
    ui.say(
      `experiment done in ${result.minutes.toFixed(1)} min; wrote ${out}/RESULTS.md and ${out}/results.json`,
    );
    process.stdout.write(result.markdown);
  });
}
