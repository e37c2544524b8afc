/**
 * The preference judge of the JUDGE stage: ranks each prompt's responses with the PM (tournament unless
 * the shard asks for a round robin) and writes rewards n - 1 - position, the rule agreed in
 * stage_work.proto, so that max-min pairing follows the ranking. Output goes to the shard's deterministic
 * key; shards of another judge type are left to their own workers.
 */
import { type ArtifactStore, invalidArgument } from '@rlhf/platform';
import { JudgeType, Stage, type StageWork } from '@rlhf/proto';
import {
  checkShardUris,
  formatJudged,
  judgePrompt,
  parseGenerations,
  type ShardContext,
  type ShardHandler,
  type ShardResult,
  shardHandler,
} from '@rlhf/service-kit';
import { rankMethodOf } from './compare-request.js';
import { type PreferenceJudge, rewardsFromRanking } from './preference-judge.js';

const PROGRESS_EVERY_MS = 1000;

/** The work-queue token of preference-judge shards (see the stages list in @rlhf/platform). */
export const PREFERENCE_JUDGE_TOKEN = 'judge-preference';

export function isPreferenceJudge(work: StageWork): boolean {
  return work.params?.$case === 'judge' && work.params.value.type === JudgeType.JUDGE_TYPE_PREFERENCE;
}

export async function judgeShard(
  work: StageWork,
  store: ArtifactStore,
  judge: PreferenceJudge,
  ctx: Pick<ShardContext, 'progress'>,
): Promise<ShardResult> {
  if (work.params?.$case !== 'judge') throw invalidArgument('params', 'a JUDGE shard needs judge params');
  const params = work.params.value;
  const method = rankMethodOf(params.rankMethod, 'judge.rank_method');
  if (work.inputUri === '') throw invalidArgument('input_uri', 'is required');
  await checkShardUris(store, work);
  const model = await judge.model(params.model, 'judge.model');
  const records = await parseGenerations(await store.get(work.inputUri), work.inputUri);

  const rewards: number[][] = [];
  const started = Date.now();
  let reported = started;
  for (const [i, record] of records.entries()) {
    const where = `${work.inputUri}:record ${i + 1}`;
    // A chat record's messages through the preference model's own template, as `rlhf train pm` renders them.
    const prompt = judgePrompt(model.model, record, where);
    judge.checkFits(
      model,
      { field: `${where}:prompt`, text: prompt },
      record.responses.map((text, j) => ({ field: `${where}:responses[${j}]`, text })),
    );
    if (record.responses.length === 1) {
      rewards.push([0]); // nothing to compare against: the only response is both best and worst
    } else {
      const ranked = await judge.rank(model, prompt, record.responses, method);
      rewards.push(rewardsFromRanking(ranked.ranking));
    }
    const now = Date.now();
    if (now - reported >= PROGRESS_EVERY_MS || i === records.length - 1) {
      reported = now;
      const seconds = (now - started) / 1000;
      await ctx.progress({
        done: i + 1,
        total: records.length,
        unit: 'prompts',
        rate: (i + 1) / Math.max(seconds, 1e-3),
        etaSeconds: ((records.length - i - 1) * seconds) / (i + 1),
      });
    }
  }
  await store.put(work.outputUri, formatJudged(records, rewards));
  return { outputUri: work.outputUri, items: records.length };
}

/** JUDGE shards of the preference type, from their own queue (the NATS worker and in-process runs). */
export function preferenceJudgeHandler(o: { store: ArtifactStore; judge: PreferenceJudge }): ShardHandler {
  return shardHandler(
    Stage.STAGE_JUDGE,
    'judge-preference',
    (work, ctx) => judgeShard(work, o.store, o.judge, ctx),
    {
      token: PREFERENCE_JUDGE_TOKEN,
      accepts: isPreferenceJudge,
    },
  );
}
