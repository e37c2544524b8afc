/**
 * The GENERATE stage worker: reads a shard of prompts (`{"prompt"}`, `{"prompt_ids"}` or `{"messages"}`
 * JSONL), samples n responses per prompt with the shard's policy through the shared batcher (so shards and
 * gRPC calls fill the same passes), and writes generations to the shard's deterministic output key (a
 * redelivered shard overwrites it): `{"prompt", "responses", "response_ids", "logprobs", "finish_reasons"}`
 * per prompt, in input order, plus any other field the prompt row had (an `id` flows on to the judge and the
 * pairs). That is what the JUDGE workers parse (service-kit parseGenerations).
 *
 * Each prompt's random streams are keyed by (sampling.seed, its global row index = first_row_index + i,
 * sample index), so a prompt gets the same responses however the prompts were sharded or batched, and a
 * redelivered shard writes the same output.
 *
 * The engine is the shard's: with `generate.openai` set (spec.engines.generate.type openai) the prompts go
 * to that OpenAI-compatible server with the same streams (served-sampling.ts); the rows are the same.
 */
import { type LoadedModelDir, parseDatasetBytes, parsePromptRecord, promptInputOf } from '@rlhf/ml-engine';
import { type ArtifactStore, invalidArgument } from '@rlhf/platform';
import { Stage, type StageWork } from '@rlhf/proto';
import {
  checkShardUris,
  promptProgress,
  type ShardContext,
  type ShardHandler,
  type ShardResult,
  shardHandler,
} from '@rlhf/service-kit';
import { type GeneratedCompletion, toCompletion } from './completions.js';
import { type PromptSource, prepareGeneration } from './generate-request.js';
import type { PolicySampler } from './policy-sampler.js';
import { checkN, checkSamplingParams, type GenerateLimits } from './sampling-settings.js';
import { checkOpenAiEngine, sampleOnServer } from './served-sampling.js';

export function isGenerateShard(work: StageWork): boolean {
  return work.params?.$case === 'generate';
}

interface PromptRow {
  prompt: PromptSource;
  /** The row as read, for its other fields. */
  raw: Record<string, unknown>;
  where: string;
}

/** The shard's prompts; a chat prompt goes through the policy's chat template (promptInputOf). */
async function readPrompts(data: Uint8Array, source: string, model: LoadedModelDir): Promise<PromptRow[]> {
  const parse = (value: unknown, where: string): PromptRow => ({
    prompt: promptInputOf(
      model,
      parsePromptRecord(value, where, { vocabSize: model.config.vocab_size }),
      where,
    ),
    raw: value as Record<string, unknown>,
    where,
  });
  return parseDatasetBytes(data, source, parse);
}

export async function generateShard(
  work: StageWork,
  store: ArtifactStore,
  sampler: PolicySampler,
  limits: GenerateLimits,
  ctx: Pick<ShardContext, 'progress'>,
): Promise<ShardResult> {
  if (work.params?.$case !== 'generate')
    throw invalidArgument('params', 'a GENERATE shard needs generate params');
  const params = work.params.value;
  if (work.inputUri === '') throw invalidArgument('input_uri', 'is required');
  await checkShardUris(store, work);
  const n = checkN(params.n || undefined, limits, 'generate.n'); // stage work: 0 means 1
  const sampling = checkSamplingParams(params.sampling, limits, 'generate.sampling');
  const served = checkOpenAiEngine(params.openai, 'generate.openai');
  const model = await sampler.model(params.policy, 'generate.policy');
  const rows = await readPrompts(await store.get(work.inputUri), work.inputUri, model.model);
  const prepared = prepareGeneration(
    model,
    rows.map((r) => r.prompt),
    sampling,
    (i) => (rows[i] as PromptRow).where,
    'generate.sampling',
  );

  // Chunks of about one batch, so progress (and the heartbeat) comes often on long shards.
  const perChunk = Math.max(1, Math.floor(sampler.options.maxBatchCompletions / n));
  const lines: string[] = [];
  const started = Date.now();
  for (let start = 0; start < prepared.length; start += perChunk) {
    const chunk = prepared.slice(start, start + perChunk);
    const completions: GeneratedCompletion[][] = served
      ? (
          await sampleOnServer({
            engine: served,
            policyUri: params.policy?.uri ?? model.uri,
            model: model.model,
            promptIds: chunk.map((p) => p.ids),
            firstIndex: work.firstRowIndex + start,
            n,
            sampling,
          })
        ).map((samples) => samples.map((x) => toCompletion(model.model.tokenizer, x, sampling.stop)))
      : await sampler.generate(model, {
          prompts: chunk.map((p) => p.ids),
          n,
          firstPromptIndex: work.firstRowIndex + start,
          sampling,
        });
    chunk.forEach((p, k) => {
      const row = rows[start + k] as PromptRow;
      // The prompt row's other fields, then the generator's own (a prompt given as ids is written as text;
      // a conversational prompt keeps its messages as "messages", which the judge stage renders).
      const { prompt, prompt_ids: _ids, ...rest } = row.raw;
      if (Array.isArray(prompt)) rest.messages = prompt;
      const mine = completions[k] ?? [];
      lines.push(
        JSON.stringify({
          ...rest,
          prompt: p.text,
          responses: mine.map((c) => c.text),
          response_ids: mine.map((c) => c.tokenIds),
          logprobs: mine.map((c) => c.logprobs),
          finish_reasons: mine.map((c) => c.finishReason),
        }),
      );
    });
    await ctx.progress(promptProgress(Math.min(prepared.length, start + perChunk), prepared.length, started));
  }
  await store.put(work.outputUri, new TextEncoder().encode(`${lines.join('\n')}\n`));
  return { outputUri: work.outputUri, items: rows.length };
}

/** GENERATE shards, sampled through the service's shared batcher (the NATS worker and in-process runs). */
export function generateShardHandler(o: {
  store: ArtifactStore;
  sampler: PolicySampler;
  limits: GenerateLimits;
}): ShardHandler {
  return shardHandler(
    Stage.STAGE_GENERATE,
    'generate',
    (work, ctx) => generateShard(work, o.store, o.sampler, o.limits, ctx),
    { accepts: isGenerateShard },
  );
}
