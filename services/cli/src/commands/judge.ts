/**
 * `rlhf judge`: step 3 of the paper's Algorithm 2 on local files. It runs the JUDGE stage's own shard code
 * (the reward-model and preference-model services' judge workers) on one shard that is the whole file, so
 * the rewards are exactly what a run's judge stage would write for the same generations and model.
 */
import { join } from 'node:path';
import { invalidArgument, parseNumberIn } from '@rlhf/platform/core';
import type { Command } from 'commander';
import { fileUri, mustExist, namingFlags } from '../local-files.js';
import { ProgressBar } from '../progress.js';

interface JudgeFlags {
  model: string;
  data: string;
  out: string;
  lengthPenalty: string;
  rank: string;
}

const RANK_METHODS = ['tournament', 'round-robin'] as const;

export function registerJudge(program: Command): void {
  program
    .command('judge')
    .summary('score generations with a reward model, or rank them with a preference model')
    .description(
      [
        'Judge every response of a generations file (what `rlhf generate` writes: {"prompt", "responses": [...]}',
        'per line) and write the records with "rewards" added, one per response, keeping every other field.',
        'The model decides the judge: a reward model (scalar head, `rlhf train rm`) gives its Bradley-Terry score',
        "minus --length-penalty per character (the paper's concise variant); a preference model (LM head,",
        "`rlhf train pm`) ranks each prompt's responses, debiased over both orders, and gives n - 1 - rank, so the",
        "best response gets the highest reward. This is the code of a run's judge stage, so the rewards are the",
        'ones `rlhf run` would compute. Next: `rlhf data pairs` turns the judged file into DPO pairs.',
      ].join('\n'),
    )
    .requiredOption('--model <DIR>', 'reward model or preference model directory')
    .requiredOption('--data <FILE>', 'generations {"prompt", "responses"}, JSONL or Parquet')
    .requiredOption('--out <FILE>', 'judged JSONL (written atomically)')
    .option('--length-penalty <X>', 'reward models: subtract X per character of each response', '0')
    .option(
      '--rank <METHOD>',
      'preference models: tournament (about 1.5 n comparisons) or round-robin',
      'tournament',
    )
    .action(async (f: JudgeFlags) => {
      const { headTypeOf, parseLlamaConfig, readJsonFile } = await import('@rlhf/ml-engine');
      const { ArtifactRouter, ArtifactSandbox } = await import('@rlhf/platform');
      const { JudgeType, RankMethod, StageWork } = await import('@rlhf/proto');
      const { defaultModelCacheDir, ModelCache } = await import('@rlhf/service-kit');
      const { Registry } = await import('prom-client');
      const lengthPenalty = parseNumberIn(f.lengthPenalty, '--length-penalty', 0, Number.MAX_VALUE);
      if (!(RANK_METHODS as readonly string[]).includes(f.rank))
        throw invalidArgument('--rank', `unknown method "${f.rank}"`, 'use tournament or round-robin');
      await mustExist(f.model, '--model', 'model directory');
      await mustExist(f.data, '--data', 'generations JSONL file');
      const configFile = join(f.model, 'config.json');
      await mustExist(configFile, '--model', 'model directory (it holds config.json)');
      const head = headTypeOf(parseLlamaConfig(await readJsonFile(configFile), configFile));
      const reward = head === 'scalar';
      if (!reward && lengthPenalty > 0)
        throw invalidArgument(
          '--length-penalty',
          `${f.model} is a preference model, which ranks responses and takes no length penalty`,
          'drop --length-penalty, or pass a reward model',
        );

      const store = new ArtifactRouter(null, ArtifactSandbox.unrestricted());
      const cache = new ModelCache({ store, cacheDir: defaultModelCacheDir() });
      const registry = new Registry();
      const work = StageWork.fromPartial({
        shardCount: 1,
        inputUri: fileUri(f.data),
        outputUri: fileUri(f.out),
        params: {
          $case: 'judge',
          value: {
            type: reward ? JudgeType.JUDGE_TYPE_REWARD : JudgeType.JUDGE_TYPE_PREFERENCE,
            model: { uri: fileUri(f.model) },
            lengthPenalty,
            rankMethod:
              f.rank === 'round-robin'
                ? RankMethod.RANK_METHOD_ROUND_ROBIN
                : RankMethod.RANK_METHOD_TOURNAMENT,
          },
        },
      });
      let bar: ProgressBar | null = null;
      const ctx = {
        progress: async (p: { done: number; total: number }) => {
          bar ??= new ProgressBar({ label: 'judge', total: p.total, unit: 'prompt' });
          bar.update(p.done);
        },
      };
      try {
        // The shard code names the model as the stage's field; here it is a flag.
        const result = await namingFlags({ 'judge.model': '--model' }, async () => {
          if (reward) {
            const { judgeRewardShard, RewardScorer } = await import('@rlhf/reward-model');
            const scorer = new RewardScorer(cache, { windowMs: 0, maxBatchResponses: 64 }, registry);
            return judgeRewardShard(work, store, scorer, ctx);
          }
          const { judgePreferenceShard, PreferenceJudge } = await import('@rlhf/preference-model');
          const judge = new PreferenceJudge(cache, { windowMs: 0, maxBatchComparisons: 32 }, registry);
          return judgePreferenceShard(work, store, judge, ctx);
        });
        (bar as ProgressBar | null)?.done(`${result.items} prompts`);
        const how = reward ? `reward model, length penalty ${lengthPenalty}` : `preference model, ${f.rank}`;
        process.stderr.write(`judged ${result.items} prompts with ${f.model} (${how}); wrote ${f.out}\n`);
      } finally {
        await cache.close();
      }
    });
}
