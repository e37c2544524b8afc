/**
 * The EVALUATE stage (step 6 of Algorithm 2) as a shard function, served by the policy generator's NATS
 * worker. A shard reads held-out prompts (JSONL, `{"prompt"}`, `{"prompt_ids"}` or `{"messages"}`), samples
 * n completions per prompt from the policy, and writes one evaluation row per (prompt, sample) in the
 * pipeline's EvalRow format (see @rlhf/pipeline eval-rows.ts) to the work's deterministic output URI:
 * the sample's log-prob under the policy and under the baseline (pi_0, for the KL estimate), the proxy
 * judge's raw reward when the run's judge is a reward model, and the task's gold reward, grammaticality
 * and word count when the work names a gold reward. The metrics themselves (win rate, KL, mean reward)
 * are computed by whoever reads every shard's rows, with pipeline's evaluationMetrics.
 *
 * Sample j of the prompt with global index i (first_row_index + its line among the shard's prompts) draws
 * from the random stream (sampling.seed, i, j), so rows do not depend on the sharding or on batching.
 * With `evaluate.openai` set (spec.engines.generate.type openai) the policy's samples and their log-probs
 * come from that OpenAI-compatible server, with the same streams (served-sampling.ts); the baseline's
 * log-probs and the rewards are computed here either way.
 */
import {
  type ChatMessage,
  chatRenderer,
  type Example,
  type GenerateRequest,
  generate,
  type LoadedModelDir,
  parseDatasetBytes,
  parsePromptRecord,
  promptIds,
  promptInputOf,
  promptText,
  type Sample,
  scoreResponses,
  sequenceLogps,
} from '@rlhf/ml-engine';
import { type EvalRow, formatEvalRows } from '@rlhf/pipeline';
import {
  type ArtifactStore,
  asRlhfError,
  invalidArgument,
  type Logger,
  type NatsConnection,
  RlhfError,
} from '@rlhf/platform';
import { type EvaluateShardParams, JudgeType, Stage, type StageWork } from '@rlhf/proto';
import { type TaskOracle, taskOracle } from '@rlhf/reference-task';
import {
  checkShardUris,
  type LoadedModel,
  loadModelRef,
  type ModelCache,
  promptProgress,
  type RunningWorker,
  type ShardContext,
  type ShardHandler,
  type ShardResult,
  shardHandler,
  startShardWorker,
} from '@rlhf/service-kit';
import {
  checkN,
  checkSamplingParams,
  defaultGenerateLimits,
  type SamplingSettings,
} from './sampling-settings.js';
import { checkOpenAiEngine, sampleOnServer } from './served-sampling.js';
import { tokenizerKey } from './tokenizer-key.js';

/** Samples per step (generation, baseline log-probs, judge): progress is reported after each. */
const CHUNK_SAMPLES = 64;

export interface EvaluateDeps {
  store: ArtifactStore;
  cache: ModelCache;
}

/** One held-out prompt of the shard: its text, its ids (prompt-ids.ts: the tokenizer's own special tokens for text) and its global index. */
interface EvalPrompt {
  text: string;
  ids: number[];
  row: number;
  where: string;
  /** A chat prompt's messages, which the reward model renders with its own template. */
  messages?: ChatMessage[];
}

type ParsedPrompt = ({ where: string; text: string } | { where: string; ids: number[] }) & {
  messages?: ChatMessage[];
};

function checkParams(work: StageWork): EvaluateShardParams {
  if (work.params?.$case !== 'evaluate')
    throw invalidArgument(
      'params',
      `an EVALUATE shard needs evaluate params, got ${work.params?.$case ?? 'none'}`,
      'set StageWork.evaluate',
    );
  if (work.inputUri === '')
    throw invalidArgument('input_uri', 'is required', 'point it at a JSONL file of {"prompt": ...} rows');
  if (work.outputUri === '') throw invalidArgument('output_uri', 'is required');
  return work.params.value;
}

/** Whether the judge is a reward model whose raw score is the proxy reward. */
function rewardJudge(p: EvaluateShardParams): boolean {
  const judge = p.judge;
  if (!judge) return false;
  switch (judge.type) {
    case JudgeType.JUDGE_TYPE_REWARD:
      return true;
    case JudgeType.JUDGE_TYPE_UNSPECIFIED:
      return (judge.model?.uri ?? '') !== '';
    case JudgeType.JUDGE_TYPE_PREFERENCE:
    case JudgeType.JUDGE_TYPE_GOLD:
      return false;
    default:
      throw invalidArgument(
        'evaluate.judge.type',
        `unknown judge type ${judge.type}`,
        'use REWARD, PREFERENCE or GOLD',
      );
  }
}

function oracleFor(name: string): TaskOracle | null {
  if (name === '') return null;
  try {
    return taskOracle(name, 'evaluate.gold_reward');
  } catch (err) {
    const e = err as Error & { field?: string; fix?: string };
    throw invalidArgument(e.field ?? 'evaluate.gold_reward', e.message, e.fix);
  }
}

/** Words split on whitespace: the length measure when the work names no task. */
export function whitespaceWords(text: string): number {
  return text.split(/\s+/).filter((w) => w !== '').length;
}

async function readInput(store: ArtifactStore, uri: string): Promise<Uint8Array> {
  try {
    return await store.get(uri);
  } catch (err) {
    if (err instanceof RlhfError && err.field === 'uri')
      throw new RlhfError(err.code, err.message, {
        field: 'input_uri',
        ...(err.fix === undefined ? {} : { fix: err.fix }),
        cause: err,
      });
    throw err;
  }
}

/** The held-out prompts; a chat prompt goes through the policy's chat template (promptInputOf). */
async function readPrompts(data: Uint8Array, source: string, model: LoadedModelDir): Promise<ParsedPrompt[]> {
  return parseDatasetBytes(data, source, (value, where): ParsedPrompt => {
    const r = parsePromptRecord(value, where);
    return {
      where,
      ...promptInputOf(model, r, where),
      ...(r.kind === 'messages' ? { messages: r.messages } : {}),
    };
  });
}

function encodePrompts(
  parsed: readonly ParsedPrompt[],
  model: LoadedModelDir,
  firstRow: number,
  maxNewTokens: number,
): EvalPrompt[] {
  const tok = model.tokenizer;
  const maxLen = model.config.max_position_embeddings;
  return parsed.map((p, i) => {
    if ('ids' in p) {
      const bad = p.ids.find((id) => id >= model.config.vocab_size);
      if (bad !== undefined)
        throw invalidArgument(
          `${p.where}:prompt_ids`,
          `token id ${bad} is outside the policy's vocabulary (size ${model.config.vocab_size})`,
          "tokenize with the policy's tokenizer, or give the prompt as text",
        );
    }
    // Ids verbatim, text with the tokenizer's own special tokens (prompt-ids.ts).
    const ids = promptIds(tok, p);
    if (ids.length + maxNewTokens > maxLen)
      throw invalidArgument(
        p.where,
        `the prompt has ${ids.length} tokens; with max_new_tokens ${maxNewTokens} it exceeds the policy's ${maxLen} positions`,
        'shorten the prompt or lower evaluate.sampling.max_new_tokens',
      );
    const text = 'ids' in p ? promptText(tok, p.ids) : p.text;
    return { text, ids, row: firstRow + i, where: p.where, ...(p.messages ? { messages: p.messages } : {}) };
  });
}

const tokenizerKeys = new WeakMap<LoadedModelDir, string>();
const tokenizerKeyOf = (m: LoadedModelDir): string => {
  let key = tokenizerKeys.get(m);
  if (key === undefined) {
    key = tokenizerKey(m.tokenizerJson);
    tokenizerKeys.set(m, key);
  }
  return key;
};

/** The baseline scores the policy's token ids, so it must read them as the policy wrote them. */
function checkBaseline(policy: LoadedModel, baseline: LoadedModel, longest: number): void {
  const a = policy.model;
  const b = baseline.model;
  const same =
    a.config.vocab_size === b.config.vocab_size &&
    a.tokenizer.bosId === b.tokenizer.bosId &&
    a.tokenizer.eosId === b.tokenizer.eosId &&
    tokenizerKeyOf(a) === tokenizerKeyOf(b);
  if (!same)
    throw new RlhfError(
      'FAILED_PRECONDITION',
      `the baseline ${baseline.uri} has another tokenizer than the policy ${policy.uri}`,
      {
        field: 'evaluate.baseline.uri',
        fix: 'evaluate against pi_0 of the same run (same tokenizer as the policy)',
      },
    );
  if (longest > b.config.max_position_embeddings)
    throw new RlhfError(
      'FAILED_PRECONDITION',
      `prompt plus max_new_tokens reaches ${longest} positions, more than the baseline's ${b.config.max_position_embeddings}`,
      { field: 'evaluate.baseline.uri', fix: 'lower evaluate.sampling.max_new_tokens' },
    );
}

/** The completion's text: EOS dropped, and cut before the first stop string that ended it. */
function completionText(model: LoadedModelDir, s: Sample, stops: readonly string[]): string {
  const tok = model.tokenizer;
  const ids = s.finishReason === 'eos' ? s.tokenIds.slice(0, -1) : s.tokenIds;
  const text = tok.decode(ids);
  if (s.finishReason !== 'stop' || stops.length === 0) return text;
  let cut = text.length;
  for (const stop of stops) {
    const at = text.indexOf(stop);
    if (at >= 0 && at < cut) cut = at;
  }
  return text.slice(0, cut);
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/**
 * Evaluates one shard and stores its rows at work.output_uri (overwriting what a previous delivery wrote).
 * Bad input (params, prompts, a model of the wrong kind or missing) throws an RlhfError of code
 * INVALID_ARGUMENT, FAILED_PRECONDITION or NOT_FOUND naming the field, which the stage worker terminates.
 */
export async function evaluateShard(
  work: StageWork,
  deps: EvaluateDeps,
  ctx: Pick<ShardContext, 'progress'>,
): Promise<ShardResult> {
  try {
    return await evaluate(work, deps, ctx);
  } catch (err) {
    // The engine's errors carry the same code, field and fix: hand them on as the platform's.
    throw asRlhfError(err) ?? err;
  }
}

/**
 * A setting above a server limit is RESOURCE_EXHAUSTED for a caller who can retry smaller; a queued shard
 * cannot change, and another worker has the same limits, so it is bad input.
 */
function settingsCheck<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof RlhfError && err.code === 'RESOURCE_EXHAUSTED')
      throw new RlhfError('INVALID_ARGUMENT', err.message, {
        ...(err.field === undefined ? {} : { field: err.field }),
        ...(err.fix === undefined ? {} : { fix: err.fix }),
      });
    throw err;
  }
}

async function evaluate(
  work: StageWork,
  deps: EvaluateDeps,
  ctx: Pick<ShardContext, 'progress'>,
): Promise<ShardResult> {
  const p = checkParams(work);
  await checkShardUris(deps.store, work);
  const n = settingsCheck(() => checkN(p.n || undefined, defaultGenerateLimits, 'evaluate.n'));
  const sampling: SamplingSettings = settingsCheck(() =>
    checkSamplingParams(p.sampling, defaultGenerateLimits, 'evaluate.sampling'),
  );
  const served = checkOpenAiEngine(p.openai, 'evaluate.openai');
  const oracle = oracleFor(p.goldReward);
  const withJudge = rewardJudge(p);
  if (!p.baseline || p.baseline.uri === '')
    throw invalidArgument('evaluate.baseline.uri', 'is required', 'pass pi_0 (the SFT policy) of the run');
  const policy = await loadModelRef(deps.cache, p.policy, 'lm', 'evaluate.policy');
  const parsed = await readPrompts(await readInput(deps.store, work.inputUri), work.inputUri, policy.model);
  const baseline = await loadModelRef(deps.cache, p.baseline, 'lm', 'evaluate.baseline');
  const judge = withJudge
    ? await loadModelRef(deps.cache, p.judge?.model, 'scalar', 'evaluate.judge.model')
    : null;
  const model = policy.model;
  const tok = model.tokenizer;
  // The reward model reads a chat prompt through its own template, as the judge stage does (judgePrompt).
  const judgeChat = judge?.model.chatTemplate !== undefined ? chatRenderer(judge.model) : null;
  const judgeText = (q: EvalPrompt): string =>
    judgeChat && q.messages ? judgeChat(q.messages, q.where) : q.text;
  sampling.stopIds.forEach((id, i) => {
    if (id >= model.config.vocab_size)
      throw invalidArgument(
        `evaluate.sampling.stop_token_ids[${i}]`,
        `token id ${id} is outside the policy's vocabulary (size ${model.config.vocab_size})`,
      );
  });
  const prompts = encodePrompts(parsed, model, work.firstRowIndex, sampling.maxNewTokens);
  // The same model (URI and version) scores its own samples: its log-probs are the baseline's, KL 0.
  const sameBaseline = baseline.uri === policy.uri && baseline.version === policy.version;
  if (!sameBaseline)
    checkBaseline(policy, baseline, Math.max(...prompts.map((q) => q.ids.length)) + sampling.maxNewTokens);

  const stops = sampling.stop;
  const requestOptions: GenerateRequest['options'] =
    stops.length > 0 ? { stopWhen: (ids) => stops.some((s) => tok.decode(ids).includes(s)) } : undefined;
  const perChunk = Math.max(1, Math.floor(CHUNK_SAMPLES / n));
  const rows: EvalRow[] = [];
  const started = Date.now();
  // The shard runs the policy and the judge many times: both stay loaded until it is done (shared-session.ts).
  const releases = [policy.session.hold(), ...(judge ? [judge.session.hold()] : [])];
  try {
    for (let at = 0; at < prompts.length; at += perChunk) {
      const chunk = prompts.slice(at, at + perChunk);
      const samples: Sample[] = served
        ? (
            await sampleOnServer({
              engine: served,
              policyUri: p.policy?.uri ?? policy.uri,
              model,
              promptIds: chunk.map((q) => q.ids),
              firstIndex: (chunk[0] as EvalPrompt).row,
              n,
              sampling,
            })
          ).flat()
        : await generate(
            policy.session,
            model.config,
            chunk.map((q) => ({
              promptIds: q.ids,
              n,
              promptIndex: q.row,
              ...(requestOptions ? { options: requestOptions } : {}),
            })),
            {
              temperature: sampling.temperature,
              topP: sampling.topP,
              topK: sampling.topK,
              greedy: sampling.greedy,
              maxNewTokens: sampling.maxNewTokens,
              seed: sampling.seed,
              eosId: tok.eosId,
              padId: tok.padId,
              sampleVocab: Math.min(tok.vocabSize, model.config.vocab_size),
              stopIds: sampling.stopIds,
              endIds: model.endTokenIds ?? [],
              maxBatch: CHUNK_SAMPLES,
            },
          );
      const promptOf = new Map(chunk.map((q) => [q.row, q]));
      const sampled = samples.map((s) => {
        const q = promptOf.get(s.promptIndex) as EvalPrompt;
        return { q, s, completion: completionText(model, s, stops), logp: sum(s.logprobs) };
      });

      let baselineLogps: ArrayLike<number>;
      if (sameBaseline) baselineLogps = sampled.map((x) => x.logp);
      else {
        const examples: Example[] = sampled.map(({ q, s }) => {
          const ids = [...q.ids, ...s.tokenIds];
          return { ids, targets: ids.map((_, t) => t >= q.ids.length) };
        });
        baselineLogps = await sequenceLogps(
          baseline.model.config,
          baseline.model.weights,
          examples,
          baseline.model.tokenizer.padId,
        );
      }

      let proxy: number[] | null = null;
      if (judge) {
        const scored = await scoreResponses(
          judge.model,
          judge.session,
          sampled.map((x) => ({ prompt: judgeText(x.q), responses: [x.completion] })),
          0,
          CHUNK_SAMPLES,
        );
        proxy = scored.map((r) => r.rewards[0] as number);
      }

      sampled.forEach(({ q, s, completion, logp }, k) => {
        const eos = s.finishReason === 'eos';
        rows.push({
          prompt: q.text,
          completion,
          completion_ids: s.tokenIds,
          finish_reason: s.finishReason,
          endedWithEos: eos,
          logp,
          logpBaseline: baselineLogps[k] as number,
          proxyReward: proxy ? (proxy[k] as number) : null,
          gold: oracle ? oracle.gold(q.text, completion, eos) : null,
          grammatical: oracle ? oracle.grammatical(q.text, completion, eos) : null,
          words: oracle ? oracle.words(completion) : whitespaceWords(completion),
          row: q.row,
          sample: s.sampleIndex,
        });
      });
      await ctx.progress(promptProgress(Math.min(at + perChunk, prompts.length), prompts.length, started));
    }
  } finally {
    for (const release of releases) release();
  }
  await deps.store.put(work.outputUri, formatEvalRows(rows));
  return { outputUri: work.outputUri, items: rows.length };
}

/** EVALUATE shards with models from the service's cache (the NATS worker and in-process runs). */
export function evaluateShardHandler(deps: EvaluateDeps): ShardHandler {
  return shardHandler(Stage.STAGE_EVALUATE, 'evaluate', (work, ctx) => evaluateShard(work, deps, ctx));
}

/** Serves EVALUATE shards from the work queue (one at a time), with models from the service's cache. */
export function startEvaluateWorker(o: {
  nats: NatsConnection;
  logger: Logger;
  store: ArtifactStore;
  cache: ModelCache;
  ackWaitMs?: number;
}): Promise<RunningWorker> {
  return startShardWorker({
    nats: o.nats,
    logger: o.logger,
    handler: evaluateShardHandler({ store: o.store, cache: o.cache }),
    ...(o.ackWaitMs === undefined ? {} : { ackWaitMs: o.ackWaitMs }),
  });
}
