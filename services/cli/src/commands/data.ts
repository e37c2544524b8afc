import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument, parseIntegerIn, parseNumberIn } from '@rlhf/platform/core';
import { defaultSynthOptions, synthesizeSentimentTask } from '@rlhf/reference-task';
import type { Command } from 'commander';
import { fileUri, mustExist } from '../local-files.js';
import { registerDataTransfer } from './data-transfer.js';

interface SynthFlags {
  out: string;
  seed: string;
  sft: string;
  prompts: string;
  evalPrompts: string;
  pairs: string;
  evalPairs: string;
  tau: string;
  kappa: string;
  overwrite?: boolean;
}

export function registerData(program: Command): void {
  const data = program.command('data').summary('make datasets, build pairs, push and pull dataset files');
  registerDataTransfer(data);
  const d = defaultSynthOptions;
  data
    .command('synth')
    .summary('write the datasets of a built-in task')
    .description(
      [
        'Write every dataset of the reference task (docs/ARCHITECTURE.md, section 6) from one seed:',
        '  sft.jsonl               {"prompt","completion"} reviews from the grammar, for SFT',
        '  prompts.jsonl           {"prompt"} prompts for the online iterations',
        '  eval.jsonl              {"prompt"} held-out prompts',
        '  preferences.jsonl       {"prompt","chosen","rejected"} labelled by simulated annotators',
        '  preferences-eval.jsonl  held-out labelled pairs (reward model accuracy)',
        '  corpus.txt              one review a line, for training the tokenizer',
        '  task.json               sizes, annotator model, and the Bayes rate of the labels',
        'The output directory appears whole or not at all.',
      ].join('\n'),
    )
    .argument('<task>', 'the task; only "sentiment" exists')
    .requiredOption('--out <DIR>', 'output directory (must not exist, or be empty, unless --overwrite)')
    .option('--seed <N>', 'random seed', String(d.seed))
    .option('--sft <N>', 'SFT examples', String(d.sftExamples))
    .option('--prompts <N>', 'prompts for the online iterations', String(d.prompts))
    .option('--eval-prompts <N>', 'held-out prompts', String(d.evalPrompts))
    .option('--pairs <N>', 'labelled preference pairs', String(d.preferencePairs))
    .option('--eval-pairs <N>', 'held-out labelled pairs', String(d.preferenceEvalPairs))
    .option('--tau <X>', 'annotator noise scale on the gold difference', String(d.annotators.tau))
    .option('--kappa <X>', 'annotator verbosity bias per extra word', String(d.annotators.kappa))
    .option('--overwrite', 'replace an existing output directory')
    .action(async (task: string, f: SynthFlags) => {
      const { writeDirectoryAtomically } = await import('@rlhf/ml-engine');
      if (task !== 'sentiment') {
        throw invalidArgument('<task>', `unknown task "${task}"`, 'use: rlhf data synth sentiment --out DIR');
      }
      const count = (v: string, flag: string, min = 1): number => parseIntegerIn(v, flag, min, 10_000_000);
      const result = synthesizeSentimentTask({
        seed: parseIntegerIn(f.seed, '--seed', 0, 2 ** 32 - 1),
        sftExamples: count(f.sft, '--sft'),
        prompts: count(f.prompts, '--prompts'),
        evalPrompts: count(f.evalPrompts, '--eval-prompts'),
        preferencePairs: count(f.pairs, '--pairs'),
        preferenceEvalPairs: count(f.evalPairs, '--eval-pairs'),
        annotators: {
          tau: parseNumberIn(f.tau, '--tau', 1e-6, 1e6),
          kappa: parseNumberIn(f.kappa, '--kappa', -100, 100),
        },
      });
      await writeDirectoryAtomically(
        f.out,
        async (dir) => {
          for (const [name, text] of Object.entries(result.files)) await writeFile(join(dir, name), text);
        },
        { overwrite: f.overwrite === true },
      );
      const s = result.summary as {
        counts: Record<string, number>;
        bayesRate: { eval: number };
        sft: { meanGold: number };
      };
      process.stdout.write(
        `wrote ${f.out}: ${Object.entries(s.counts)
          .map(([k, v]) => `${v} ${k}`)
          .join(
            ', ',
          )}; label Bayes rate ${s.bayesRate.eval.toFixed(3)}, SFT mean gold ${s.sft.meanGold.toFixed(3)}\n`,
      );
    });

  data
    .command('pairs')
    .summary('build DPO pairs (chosen, rejected) from judged generations')
    .description(
      [
        "Step 4 of the paper's Algorithm 2, the code of a run's pair stage: from each judged record (what",
        '`rlhf judge` writes: {"prompt", "responses", "rewards"}) take one pair, chosen = the best response and',
        "rejected = by --strategy: maxMin the worst (the paper's choice), maxRandom a random other, random two",
        'at random (ordered by reward). Pairs whose rewards tie or whose responses are identical are dropped.',
        'Records from `rlhf generate` carry token ids, and pairs keep them ({"prompt", "chosen_ids",',
        '"rejected_ids", "margin"}: DPO trains on exactly the sampled tokens); --text writes the texts instead,',
        "the format TRL and the RLHFlow scripts read. `rlhf train dpo --data` reads either. RLHFlow's own",
        'generation+rewards files are these rows; --data is JSONL or Parquet (docs/DATA.md).',
      ].join('\n'),
    )
    .requiredOption('--data <FILE>', 'judged rows {"prompt", "responses", "rewards"}, JSONL or Parquet')
    .requiredOption('--out <FILE>', 'pairs JSONL (written atomically)')
    .option('--strategy <S>', 'maxMin, maxRandom or random', 'maxMin')
    .option('--seed <N>', 'seed of the random strategies', '0')
    .option('--text', 'write "chosen" and "rejected" as text even when the records carry token ids')
    .action(async (f: { data: string; out: string; strategy: string; seed: string; text?: boolean }) => {
      const { buildPairs } = await import('@rlhf/orchestrator');
      const { ArtifactRouter, ArtifactSandbox } = await import('@rlhf/platform');
      const strategies = ['maxMin', 'maxRandom', 'random'] as const;
      const strategy = strategies.find((s) => s === f.strategy);
      if (!strategy)
        throw invalidArgument(
          '--strategy',
          `unknown strategy "${f.strategy}"`,
          'use maxMin, maxRandom or random',
        );
      const seed = parseIntegerIn(f.seed, '--seed', 0, 2 ** 31);
      await mustExist(f.data, '--data', 'judged JSONL file (rlhf judge writes one)');
      const r = await buildPairs(
        new ArtifactRouter(null, ArtifactSandbox.unrestricted()),
        [fileUri(f.data)],
        fileUri(f.out),
        {
          strategy,
          seed,
          ...(f.text ? { text: true } : {}),
        },
      );
      process.stderr.write(
        `wrote ${r.pairs} pairs from ${r.records} records to ${f.out} (${r.records - r.pairs} dropped: fewer than 2 responses, tied rewards or identical responses)\n`,
      );
    });
}
