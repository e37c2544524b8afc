/**
 * `rlhf eval`: step 6 of the paper's Algorithm 2 on local files. It runs the EVALUATE stage's shard code (the
 * policy generator's) twice on the same prompts, sampling seed and settings: the policy against the
 * baseline, and the baseline against itself, so the figures are the ones a run reports for an iteration and
 * for pi_0.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseIntegerIn, parseNumberIn } from '@rlhf/platform/core';
import type { Command } from 'commander';
import { fileUri, mustExist, namingFlags } from '../local-files.js';
import { ProgressBar } from '../progress.js';

interface EvalFlags {
  policy: string;
  baseline: string;
  prompts: string;
  judge?: string;
  gold?: string;
  n: string;
  maxNewTokens: string;
  temperature: string;
  seed: string;
  out?: string;
  overwrite?: boolean;
}

/** JSON has no NaN: a metric nothing measured is null. */
const jsonSafe = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v);
const fmt = (x: number | null, digits = 3): string =>
  x === null || !Number.isFinite(x) ? '-' : x.toFixed(digits);

export function registerEval(program: Command): void {
  program
    .command('eval')
    .summary('compare a policy with a baseline on held-out prompts: judge reward, win rate, KL, length')
    .description(
      [
        'Sample n completions per prompt from the policy and from the baseline (usually pi_0, the SFT model) with',
        "the same seed and settings, and print JSON metrics for both: the judge reward (a reward model's raw",
        'score, --judge), the win rate against the baseline under the judge (ties half), KL(policy || baseline)',
        'estimated from the samples, mean length in words, and with --gold the built-in gold reward, its win rate',
        "and the grammatical share. This is the code of a run's evaluate stage, so the figures are the ones",
        '`rlhf run` reports. --out also keeps every sample with its log-probs and rewards.',
      ].join('\n'),
    )
    .requiredOption('--policy <DIR>', 'policy model directory')
    .requiredOption('--baseline <DIR>', 'the policy to compare against (pi_0)')
    .requiredOption('--prompts <FILE>', 'JSONL or Parquet of prompt rows (docs/DATA.md)')
    .option('--judge <DIR>', 'reward model scoring every sample')
    .option('--gold <TASK>', 'built-in gold reward: "sentiment" (the reference task)')
    .option('-n, --n <K>', 'samples per prompt and model', '1')
    .option('--max-new-tokens <N>', 'tokens to generate at most', '48')
    .option('--temperature <T>', 'sampling temperature (0 = greedy)', '1')
    .option('--seed <S>', 'sampling seed (the same for both models)', '42')
    .option('--out <DIR>', 'write metrics.json, policy.jsonl and baseline.jsonl here (atomically)')
    .option('--overwrite', 'replace an existing --out directory')
    .action(async (f: EvalFlags) => {
      const { writeDirectoryAtomically } = await import('@rlhf/ml-engine');
      const { evaluationMetrics, judgeWinRate, parseEvalRows } = await import('@rlhf/pipeline');
      const { ArtifactRouter, ArtifactSandbox } = await import('@rlhf/platform');
      const { evaluateShard } = await import('@rlhf/policy-generator');
      const { JudgeType, StageWork } = await import('@rlhf/proto');
      const { defaultModelCacheDir, ModelCache } = await import('@rlhf/service-kit');
      const n = parseIntegerIn(f.n, '--n', 1, 64);
      const maxNewTokens = parseIntegerIn(f.maxNewTokens, '--max-new-tokens', 1, 4096);
      const temperature = parseNumberIn(f.temperature, '--temperature', 0, 100);
      const seed = parseIntegerIn(f.seed, '--seed', 0, 2 ** 32 - 1);
      await mustExist(f.policy, '--policy', 'model directory');
      await mustExist(f.baseline, '--baseline', 'model directory');
      await mustExist(f.prompts, '--prompts', 'prompts JSONL file');
      if (f.judge) await mustExist(f.judge, '--judge', 'reward model directory');

      const store = new ArtifactRouter(null, ArtifactSandbox.unrestricted());
      const cache = new ModelCache({ store, cacheDir: defaultModelCacheDir() });
      const scratch = await mkdtemp(join(tmpdir(), 'rlhf-eval-'));
      const evaluate = async (policy: string, name: 'policy' | 'baseline') => {
        const output = join(scratch, `${name}.jsonl`);
        const work = StageWork.fromPartial({
          shardCount: 1,
          inputUri: fileUri(f.prompts),
          outputUri: fileUri(output),
          params: {
            $case: 'evaluate',
            value: {
              policy: { uri: fileUri(policy) },
              baseline: { uri: fileUri(f.baseline) },
              ...(f.judge
                ? { judge: { type: JudgeType.JUDGE_TYPE_REWARD, model: { uri: fileUri(f.judge) } } }
                : {}),
              goldReward: f.gold ?? '',
              sampling: { temperature, maxNewTokens, seed },
              n,
            },
          },
        });
        let bar: ProgressBar | null = null;
        const ctx = {
          progress: async (p: { done: number; total: number }) => {
            bar ??= new ProgressBar({ label: `eval ${name}`, total: p.total, unit: 'prompt' });
            bar.update(p.done);
          },
        };
        const r = await evaluateShard(work, { store, cache }, ctx);
        (bar as ProgressBar | null)?.done(`${r.items} samples`);
        return output;
      };
      try {
        const [policyRows, baselineRows] = await namingFlags(
          {
            'evaluate.policy': '--policy',
            'evaluate.baseline': '--baseline',
            'evaluate.judge': '--judge',
            'evaluate.gold_reward': '--gold',
            'evaluate.sampling.max_new_tokens': '--max-new-tokens',
            'evaluate.sampling.temperature': '--temperature',
            input_uri: '--prompts',
          },
          async () => [await evaluate(f.policy, 'policy'), await evaluate(f.baseline, 'baseline')],
        );
        const samples = parseEvalRows(await readFile(policyRows), policyRows);
        const baseline = parseEvalRows(await readFile(baselineRows), baselineRows);
        const result = {
          policy: evaluationMetrics(samples, baseline),
          baseline: evaluationMetrics(baseline, baseline),
          judgeWinRate: judgeWinRate(samples, baseline),
        };
        const json = `${JSON.stringify(result, jsonSafe, 2)}\n`;
        if (f.out)
          await writeDirectoryAtomically(
            f.out,
            async (dir) => {
              await writeFile(join(dir, 'metrics.json'), json);
              await writeFile(join(dir, 'policy.jsonl'), await readFile(policyRows));
              await writeFile(join(dir, 'baseline.jsonl'), await readFile(baselineRows));
            },
            { overwrite: f.overwrite === true },
          );
        process.stdout.write(json);
        const m = result.policy;
        process.stderr.write(
          `policy: judge reward ${fmt(m.proxyReward)} (baseline ${fmt(result.baseline.proxyReward)}), judge win rate ${fmt(result.judgeWinRate, 2)}, gold ${fmt(m.goldReward)}, gold win rate ${fmt(m.winRate, 2)}, KL ${fmt(m.kl, 2)}, length ${fmt(m.meanLength, 1)} words (baseline ${fmt(result.baseline.meanLength, 1)}), ${m.samples} samples\n`,
        );
      } finally {
        await cache.close();
        await rm(scratch, { recursive: true, force: true });
      }
    });
}
