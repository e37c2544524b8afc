/**
 * The reward judge of the JUDGE stage: reads a shard of generations, scores every response with the
 * reward model minus the length penalty, and writes the judged records to the shard's deterministic output
 * key (a redelivered shard overwrites it). Shards of another judge type are left to their own workers.
 */
import { type ArtifactStore, invalidArgument } from '@rlhf/platform';
import { JudgeType, Stage, type StageWork } from '@rlhf/proto';
import {
  checkShardUris,
  formatJudged,
  type GenerationRecord,
  judgePrompt,
  parseGenerations,
  type ShardContext,
  type ShardHandler,
  type ShardResult,
  shardHandler,
} from '@rlhf/service-kit';
import type { RewardScorer } from './reward-scorer.js';

/** Responses per scoring call, so progress (and the heartbeat) comes often on long shards. */
const CHUNK_RESPONSES = 256;

export function isRewardJudge(work: StageWork): boolean {
  const p = work.params;
  return (
    p?.$case === 'judge' &&
    (p.value.type === JudgeType.JUDGE_TYPE_REWARD || p.value.type === JudgeType.JUDGE_TYPE_UNSPECIFIED)
  );
}

export async function judgeShard(
  work: StageWork,
  store: ArtifactStore,
  scorer: RewardScorer,
  ctx: Pick<ShardContext, 'progress'>,
): Promise<ShardResult> {
  if (work.params?.$case !== 'judge') throw invalidArgument('params', 'a JUDGE shard needs judge params');
  const params = work.params.value;
  if (!(Number.isFinite(params.lengthPenalty) && params.lengthPenalty >= 0))
    throw invalidArgument('judge.length_penalty', `must be >= 0, got ${params.lengthPenalty}`);
  if (work.inputUri === '') throw invalidArgument('input_uri', 'is required');
  await checkShardUris(store, work);
  const model = await scorer.model(params.model, 'judge.model');
  const records = await parseGenerations(await store.get(work.inputUri), work.inputUri);

  const rewards: number[][] = [];
  const started = Date.now();
  let i = 0;
  while (i < records.length) {
    const chunk: GenerationRecord[] = [];
    let size = 0;
    while (i < records.length && (chunk.length === 0 || size < CHUNK_RESPONSES)) {
      const r = records[i++] as GenerationRecord;
      chunk.push(r);
      size += r.responses.length;
    }
    const inputs = chunk.map((r, k) => ({
      prompt: judgePrompt(model.model, r, `${work.inputUri}:record ${i - chunk.length + k + 1}`),
      responses: r.responses,
    }));
    const scored = await scorer.score(model, inputs, params.lengthPenalty);
    rewards.push(...scored.map((s) => s.penalizedRewards));
    const seconds = (Date.now() - started) / 1000;
    await ctx.progress({
      done: i,
      total: records.length,
      unit: 'prompts',
      rate: i / Math.max(seconds, 1e-3),
      etaSeconds: ((records.length - i) * seconds) / i,
    });
  }
  await store.put(work.outputUri, formatJudged(records, rewards));
  return { outputUri: work.outputUri, items: records.length };
}

/** JUDGE shards of the reward type (the NATS worker and in-process runs). */
export function rewardJudgeHandler(o: { store: ArtifactStore; scorer: RewardScorer }): ShardHandler {
  return shardHandler(
    Stage.STAGE_JUDGE,
    'judge-reward',
    (work, ctx) => judgeShard(work, o.store, o.scorer, ctx),
    {
      accepts: isRewardJudge,
    },
  );
}
