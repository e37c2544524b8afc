/**
 * The sharded work of the stages that run models, handed to the run's ShardExecutor: generate
 * (policy-generator), judge (reward-model or preference-model; the gold judge is a pure function and runs
 * here), train (dpo-trainer: SFT and DPO; reward-model: BT; preference-model), evaluate (policy-generator).
 * Each reads and writes deterministic artifact keys; the table driver records the stage that called it.
 */

import { meanOfLastSteps } from '@rlhf/pipeline';
import { invalidArgument } from '@rlhf/platform';
import {
  DpoLossType,
  JudgeType,
  LrSchedule,
  type OpenAiEngine,
  Optimizer,
  RankMethod,
  ReferenceMode,
  Stage,
  TrainingObjective,
  type TrainShardParams,
} from '@rlhf/proto';
import { taskOracle } from '@rlhf/reference-task';
import type { RlhfRunSpec } from '@rlhf/run-spec';
import { MODEL_MANIFEST, TRAINING_METRICS_FILE } from '@rlhf/service-kit';
import { engineModelEnv, engineUrlEnv, shardInputUri, shardOutputUri } from '@rlhf/workflow';
import { readJsonl, writeJsonl } from './jsonl-artifacts.js';
import { type RunContext, shardRanges } from './run-context.js';

/** Prompts per generate/evaluate shard: small enough for steady progress, large enough for batching. */
const PROMPTS_PER_SHARD = 64;
const MAX_DELIVER = 5;

export interface GenerationRow {
  prompt: string;
  responses: string[];
  response_ids: number[][];
  finish_reasons: string[];
  rewards?: number[];
  [k: string]: unknown;
}

/**
 * A prompt as the run's datasets give it and the generate and evaluate workers read it: text, token ids, or a
 * chat conversation (which the worker renders with the policy's chat template).
 */
export type PromptRow =
  | { prompt: string }
  | { prompt_ids: number[] }
  | { messages: Array<{ role: string; content: string }> };

async function writeShardInputs(
  ctx: RunContext,
  iteration: number,
  name: string,
  prompts: readonly PromptRow[],
): Promise<Array<{ input: string; output: string; firstRow: number; rows: number }>> {
  const ranges = shardRanges(prompts.length, PROMPTS_PER_SHARD, ctx.workers);
  const shards = [];
  for (const [i, r] of ranges.entries()) {
    const input = shardInputUri(ctx.run, iteration, name, i);
    if (!(await ctx.deps.store.info(input)))
      await writeJsonl(ctx.deps.store, input, prompts.slice(r.first, r.first + r.count));
    shards.push({
      input,
      output: shardOutputUri(ctx.run, iteration, name, i),
      firstRow: r.first,
      rows: r.count,
    });
  }
  return shards;
}

export function samplingOf(spec: RlhfRunSpec, seed: number) {
  const g = spec.generation;
  return {
    temperature: g.temperature,
    topP: g.topP,
    topK: g.topK,
    maxNewTokens: g.maxNewTokens,
    seed,
    stop: [],
    stopTokenIds: [],
    greedy: false,
  };
}

/**
 * The server a sampling stage's shards go to; none for the built-in engine. openai: the spec's server
 * (without openai.model the workers name the policy's own URI, so the server serves each iteration's).
 * vllm: the server the controller started for this unit, whose address it put in the stage pod's
 * environment. Setup's baseline, when setup trains pi_0 in the same unit, has no server to wait for (pi_0
 * does not exist before the unit starts), so it samples built in.
 */
export function samplingEngineOf(
  spec: RlhfRunSpec,
  iteration: number,
  env: Readonly<Record<string, string | undefined>> = process.env,
): { openai?: OpenAiEngine } {
  const g = spec.engines.generate;
  if (g.type === 'openai' && g.openai) return { openai: { url: g.openai.url, model: g.openai.model ?? '' } };
  if (g.type !== 'vllm') return {};
  const url = env[engineUrlEnv];
  if (url) return { openai: { url, model: env[engineModelEnv] ?? '' } };
  if (iteration === 0 && spec.setup) return {};
  throw invalidArgument(
    'spec.engines.generate.type',
    `vllm: this stage has no vLLM server (${engineUrlEnv} is not set); the controller starts one for each sampling unit of a cluster run`,
    'run on a cluster with the controller, or use type openai with openai.url for a server you run yourself',
  );
}

/** n samples per prompt from `policy`; returns the generation shards' output URIs in prompt order. */
export async function generateStage(
  ctx: RunContext,
  iteration: number,
  name: string,
  o: {
    policy: string;
    prompts: readonly PromptRow[];
    n: number;
    seed: number;
    /** The stage's engine when it is handed to a server (samplingEngineOf); unset: built in. */
    openai?: OpenAiEngine;
  },
): Promise<{ outputs: string[]; prompts: number }> {
  const shards = await writeShardInputs(ctx, iteration, name, o.prompts);
  await ctx.exec(
    {
      run: ctx.run,
      iteration,
      token: 'generate',
      stage: Stage.STAGE_GENERATE,
      shards,
      unit: 'prompts',
      maxDeliver: MAX_DELIVER,
      params: {
        $case: 'generate',
        value: {
          policy: { uri: o.policy, revision: '', digest: '' },
          n: o.n,
          sampling: samplingOf(ctx.spec, o.seed),
          ...(o.openai ? { openai: o.openai } : {}),
        },
      },
    },
    ctx.ui.start(iteration === 0 ? name : `iteration ${iteration} ${name}`),
  );
  return { outputs: shards.map((s) => s.output), prompts: o.prompts.length };
}

export interface JudgeSettings {
  type: 'reward' | 'preference' | 'gold';
  model?: string;
  lengthPenalty: number;
  task?: string;
}

/** Scores every response of the generation shards; the judged shards keep every generation field. */
export async function judgeStage(
  ctx: RunContext,
  iteration: number,
  name: string,
  inputs: readonly string[],
  judge: JudgeSettings,
): Promise<{ outputs: string[] }> {
  const label = iteration === 0 ? name : `iteration ${iteration} ${name}`;
  const outputs = inputs.map((_, i) => shardOutputUri(ctx.run, iteration, name, i));
  if (judge.type === 'gold') {
    const oracle = taskOracle(judge.task ?? '', 'spec.judge.task');
    const bar = ctx.ui.start(label);
    for (const [i, input] of inputs.entries()) {
      const rows = await readJsonl<GenerationRow>(ctx.deps.store, input);
      const judged = rows.map((r) => ({
        ...r,
        rewards: r.responses.map((text, k) => oracle.gold(r.prompt, text, r.finish_reasons[k] === 'eos')),
      }));
      await writeJsonl(ctx.deps.store, outputs[i] as string, judged);
      bar(i + 1, inputs.length, 'shards');
    }
    return { outputs };
  }
  await ctx.exec(
    {
      run: ctx.run,
      iteration,
      // A preference judge's shards have their own queue, so reward-model workers never take them.
      token: judge.type === 'preference' ? 'judge-preference' : 'judge',
      stage: Stage.STAGE_JUDGE,
      shards: inputs.map((input, i) => ({ input, output: outputs[i] as string, firstRow: 0, rows: 1 })),
      unit: 'shards',
      maxDeliver: MAX_DELIVER,
      params: {
        $case: 'judge',
        value: {
          model: { uri: judge.model ?? '', revision: '', digest: '' },
          type: judge.type === 'reward' ? JudgeType.JUDGE_TYPE_REWARD : JudgeType.JUDGE_TYPE_PREFERENCE,
          lengthPenalty: judge.lengthPenalty,
          rankMethod: RankMethod.RANK_METHOD_UNSPECIFIED,
          goldReward: judge.task ?? '',
        },
      },
    },
    ctx.ui.start(label),
  );
  return { outputs };
}

export interface TrainSettings {
  objective: 'sft' | 'dpo' | 'rm' | 'pm';
  base: string;
  reference?: string;
  dataset: string;
  evalDataset?: string;
  output: string;
  epochs: number;
  learningRate: number;
  batchSize: number;
  seed: number;
}

const stageOf = {
  sft: Stage.STAGE_SFT,
  dpo: Stage.STAGE_TRAIN,
  rm: Stage.STAGE_REWARD_MODEL,
  pm: Stage.STAGE_PREFERENCE_MODEL,
} as const;
const tokenOf = { sft: 'sft', dpo: 'train', rm: 'reward-model', pm: 'preference-model' } as const;
const objectiveOf = {
  sft: TrainingObjective.TRAINING_OBJECTIVE_SFT,
  dpo: TrainingObjective.TRAINING_OBJECTIVE_DPO,
  rm: TrainingObjective.TRAINING_OBJECTIVE_REWARD_MODEL,
  pm: TrainingObjective.TRAINING_OBJECTIVE_PREFERENCE_MODEL,
} as const;

const lossOf = {
  sigmoid: DpoLossType.DPO_LOSS_TYPE_SIGMOID,
  ipo: DpoLossType.DPO_LOSS_TYPE_IPO,
  hinge: DpoLossType.DPO_LOSS_TYPE_HINGE,
} as const;
const scheduleOf = {
  cosine: LrSchedule.LR_SCHEDULE_COSINE,
  linear: LrSchedule.LR_SCHEDULE_LINEAR,
  constant: LrSchedule.LR_SCHEDULE_CONSTANT,
} as const;

/** One training shard; returns the stored model and the last logged metrics of the run. */
export async function trainStage(
  ctx: RunContext,
  iteration: number,
  name: string,
  t: TrainSettings,
): Promise<{ model: string; metrics: Record<string, number> }> {
  const d = ctx.spec.dpo;
  const params: TrainShardParams = {
    objective: objectiveOf[t.objective],
    baseModel: { uri: t.base, revision: '', digest: '' },
    reference: t.reference ? { uri: t.reference, revision: '', digest: '' } : undefined,
    hyperparameters: {
      optimizer: Optimizer.OPTIMIZER_ADAMW,
      learningRate: t.learningRate,
      epochs: t.epochs,
      maxSteps: 0,
      batchSize: t.batchSize,
      gradAccum: t.objective === 'dpo' ? d.gradAccum : 1,
      schedule: t.objective === 'dpo' ? scheduleOf[d.schedule] : LrSchedule.LR_SCHEDULE_COSINE,
      warmupRatio: t.objective === 'dpo' ? d.warmupRatio : 0.03,
      weightDecay: 0,
      maxGradNorm: t.objective === 'dpo' ? d.maxGradNorm : 1,
      seed: t.seed,
      shuffle: true,
    },
    dpo:
      t.objective === 'dpo'
        ? {
            beta: d.beta,
            lossType: lossOf[d.lossType],
            labelSmoothing: d.labelSmoothing,
            nllWeight: d.nllWeight,
            referenceMode:
              ctx.spec.reference === 'initial'
                ? ReferenceMode.REFERENCE_MODE_INITIAL
                : ReferenceMode.REFERENCE_MODE_PREVIOUS,
          }
        : undefined,
    evalDataset: t.evalDataset ? { uri: t.evalDataset, format: 0 } : undefined,
  } as unknown as TrainShardParams;
  await ctx.exec(
    {
      run: ctx.run,
      iteration,
      token: tokenOf[t.objective],
      stage: stageOf[t.objective],
      shards: [
        {
          input: t.dataset,
          output: t.output,
          firstRow: 0,
          rows: 1,
          doneMarker: `${t.output}/${MODEL_MANIFEST}`,
        },
      ],
      unit: 'steps',
      maxDeliver: MAX_DELIVER,
      params: { $case: 'train', value: params },
    },
    ctx.ui.start(iteration === 0 ? name : `iteration ${iteration} ${name}`),
  );
  return { model: t.output, metrics: await lastMetrics(ctx, t.output) };
}

async function lastMetrics(ctx: RunContext, model: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const log = await ctx.deps.store.info(`${model}/training_log.jsonl`);
  if (log) {
    const rows = await readJsonl<{ metrics?: Record<string, number> }>(
      ctx.deps.store,
      `${model}/training_log.jsonl`,
    );
    Object.assign(out, meanOfLastSteps(rows.map((r) => r.metrics ?? {})));
  }
  // Held-out figures (eval_loss, eval_accuracy) the trainer writes when it had an eval dataset.
  const file = `${model}/${TRAINING_METRICS_FILE}`;
  if (await ctx.deps.store.info(file)) {
    const m = JSON.parse(new TextDecoder().decode(await ctx.deps.store.get(file))) as {
      eval?: Record<string, number>;
    };
    Object.assign(out, m.eval ?? {});
  }
  return out;
}

/** One sample per held-out prompt from `policy`, with log-probs under `baseline`, proxy and gold rewards. */
export async function evaluateStage(
  ctx: RunContext,
  iteration: number,
  o: {
    policy: string;
    baseline: string;
    prompts: readonly PromptRow[];
    rewardModel?: string;
    task?: string;
    openai?: OpenAiEngine;
  },
): Promise<{ outputs: string[] }> {
  const shards = await writeShardInputs(ctx, iteration, 'evaluate', o.prompts);
  await ctx.exec(
    {
      run: ctx.run,
      iteration,
      token: 'evaluate',
      stage: Stage.STAGE_EVALUATE,
      shards,
      unit: 'prompts',
      maxDeliver: MAX_DELIVER,
      params: {
        $case: 'evaluate',
        value: {
          policy: { uri: o.policy, revision: '', digest: '' },
          baseline: { uri: o.baseline, revision: '', digest: '' },
          judge: o.rewardModel
            ? {
                model: { uri: o.rewardModel, revision: '', digest: '' },
                type: JudgeType.JUDGE_TYPE_REWARD,
                lengthPenalty: 0,
                rankMethod: RankMethod.RANK_METHOD_UNSPECIFIED,
                goldReward: '',
              }
            : undefined,
          goldReward: o.task ?? '',
          // The same seed every iteration: pi_t and pi_0 answer each prompt from the same random stream.
          sampling: samplingOf(ctx.spec, ctx.spec.generation.seed + 7919),
          n: 1,
          ...(o.openai ? { openai: o.openai } : {}),
        },
      },
    },
    ctx.ui.start(iteration === 0 ? 'evaluate pi_0' : `iteration ${iteration} evaluate`),
  );
  return { outputs: shards.map((s) => s.output) };
}
