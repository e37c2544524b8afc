/**
 * One RLHFRun from start to end (Algorithm 2 of the paper), as a sequence of idempotent stages: optional
 * setup (data, SFT, reward model), the length-penalty fit, pi_0's evaluation, then for t = 1..T generate ->
 * judge -> pair -> train -> evaluate. Every stage is skipped when its KV record exists, so running the same
 * run again after a crash continues where it stopped, and with the same seed ends with the same metrics.
 */
import { parsePromptRecord } from '@rlhf/ml-engine';
import type { EvalSample } from '@rlhf/pipeline';
import { invalidArgument, RlhfError } from '@rlhf/platform';
import {
  iterationPrompts,
  metricsOf,
  readEvalSamples,
  readLabelledPairs,
  writeOfflinePairs,
} from './data-stages.js';
import { readJsonl } from './jsonl-artifacts.js';
import { buildPairs, type PairSample } from './judged-pairs.js';
import { evaluateStage, generateStage, judgeStage, type PromptRow, trainStage } from './model-stages.js';
import {
  bestIterationOf,
  type IterationSummary,
  type PolicyMetrics,
  type RunSummary,
} from './report/summary-types.js';
import { once, type RunContext } from './run-context.js';
import { modelUri, stageDir } from './run-layout.js';
import { fitLambda, runSetup } from './setup-stages.js';

const finiteOrNull = (x: number | null | undefined): number | null =>
  typeof x === 'number' && Number.isFinite(x) ? x : null;

async function mustExist(ctx: RunContext, uri: string, field: string, what: string): Promise<void> {
  // The spec's URI through the run's sandbox first: PERMISSION_DENIED naming the field, nothing read.
  await ctx.deps.store.resolve(uri, field, 'read');
  if (!(await ctx.deps.store.info(uri)))
    throw new RlhfError('NOT_FOUND', `${what} ${uri} does not exist`, {
      field,
      fix: 'point the field at an existing artifact (or upload it first)',
    });
}

/** A model directory is there when its manifest (nats-obj://) or its config.json (file://) is. */
async function modelMustExist(ctx: RunContext, uri: string, field: string): Promise<void> {
  await mustExist(
    ctx,
    `${uri}/${uri.startsWith('file://') ? 'config.json' : 'manifest.json'}`,
    field,
    'model',
  );
}

/** The prompts of a dataset: `{"prompt"}`, `{"prompt_ids"}` or chat `{"messages"}` rows, each checked. */
async function promptRows(ctx: RunContext, uri: string, field: string): Promise<PromptRow[]> {
  await mustExist(ctx, uri, field, 'dataset');
  return readJsonl(ctx.deps.store, uri, (value, where): PromptRow => {
    let r: ReturnType<typeof parsePromptRecord>;
    try {
      r = parsePromptRecord(value, where);
    } catch (err) {
      throw invalidArgument(
        `${field} (${where})`,
        (err as Error).message,
        'write one {"prompt": "..."} or {"messages": [...]} object per line',
      );
    }
    if (r.kind === 'messages') return { messages: r.messages };
    return 'ids' in r.prompt ? { prompt_ids: r.prompt.ids } : { prompt: r.prompt.text };
  });
}

function policyMetrics(
  policy: string,
  samples: readonly EvalSample[],
  baseline: readonly EvalSample[],
  lambda: number,
): PolicyMetrics {
  // The validation reward is the judge's objective: the reward minus the length penalty.
  const judged = samples.map((s) => ({
    ...s,
    proxyReward: s.proxyReward - lambda * [...s.completion].length,
  }));
  const m = metricsOf(judged, baseline);
  return {
    policy,
    proxyReward: finiteOrNull(m.proxyReward),
    goldReward: finiteOrNull(m.goldReward),
    winRate: finiteOrNull(m.winRate),
    kl: finiteOrNull(m.kl),
    meanLength: finiteOrNull(m.meanLength),
    grammaticalRate: finiteOrNull(m.grammaticalRate),
  };
}

export async function reconcileRun(ctx: RunContext): Promise<RunSummary> {
  const spec = ctx.spec;
  const startedAt = new Date().toISOString();
  const setup = spec.setup ? await runSetup(ctx, spec.setup) : null;
  const pi0 = setup?.policy ?? spec.policy?.model;
  // The judge's model: given, or the one setup trained for this judge type.
  const judgeModel =
    spec.judge.model ??
    (spec.judge.type === 'reward'
      ? setup?.rewardModel
      : spec.judge.type === 'preference'
        ? setup?.preferenceModel
        : undefined);
  const promptsUri = spec.prompts.dataset ?? setup?.prompts;
  const evalUri = spec.prompts.eval ?? setup?.evalPrompts;
  const task = spec.judge.task ?? spec.setup?.task;
  if (!pi0) throw invalidArgument('spec.policy.model', 'is required unless spec.setup trains the policy');
  if (!promptsUri)
    throw invalidArgument('spec.prompts.dataset', 'is required unless spec.setup synthesizes prompts');
  // Everything the run reads is checked before the first iteration stage runs.
  if (!setup) await modelMustExist(ctx, pi0, 'spec.policy.model');
  if (spec.judge.model) await modelMustExist(ctx, spec.judge.model, 'spec.judge.model');
  const prompts = await promptRows(ctx, promptsUri, 'spec.prompts.dataset');
  if (prompts.length === 0) throw invalidArgument('spec.prompts.dataset', `${promptsUri} holds no prompts`);
  const evalPrompts = evalUri ? await promptRows(ctx, evalUri, 'spec.prompts.eval') : prompts.slice(0, 64);
  // Offline DPO: labelled pairs replace generating and judging (their stage records say so).
  const offlineUri = spec.pairs.dataset;
  if (offlineUri) await mustExist(ctx, offlineUri, 'spec.pairs.dataset', 'dataset');
  const offline = offlineUri
    ? await readLabelledPairs(ctx.deps.store, offlineUri, 'spec.pairs.dataset')
    : null;
  const skipped = async (label: string) => {
    ctx.ui.finish(label, `not needed: offline pairs from ${offlineUri}`);
    return { outputs: [] as string[], offline: true };
  };

  let lambda = 0;
  let lengthFit: { lambda: number; r2?: number } | undefined;
  if (spec.judge.lengthPenalty === 'auto') {
    if (!judgeModel || spec.judge.type !== 'reward')
      throw invalidArgument(
        'spec.judge.lengthPenalty',
        '"auto" fits lambda for a reward-model judge',
        'set a number',
      );
    if (!task)
      throw invalidArgument(
        'spec.judge.task',
        'lengthPenalty "auto" regresses on a gold reward; name the task',
      );
    const fitPrompts = prompts.slice(0, spec.setup?.lengthFitPrompts ?? 512);
    const fit = await fitLambda(ctx, {
      policy: pi0,
      rewardModel: judgeModel,
      prompts: fitPrompts,
      task,
      seed: spec.generation.seed,
    });
    lambda = fit.lambda;
    lengthFit = { lambda, ...(typeof fit.fit.r2 === 'number' ? { r2: fit.fit.r2 } : {}) };
  } else lambda = spec.judge.lengthPenalty;
  if (spec.judge.type === 'gold') lambda = 0;
  const proxyModel = spec.judge.type === 'reward' ? judgeModel : undefined;

  const evaluate = async (t: number, policy: string) => {
    const r = await once(ctx, t, 'evaluate', async () =>
      evaluateStage(ctx, t, {
        policy,
        baseline: pi0,
        prompts: evalPrompts,
        ...(proxyModel ? { rewardModel: proxyModel } : {}),
        ...(task ? { task } : {}),
      }),
    );
    return readEvalSamples(ctx.deps.store, r.outputs as string[]);
  };
  await ctx.state.putPlan({
    policy: pi0,
    prompts: promptsUri,
    ...(evalUri ? { evalPrompts: evalUri } : {}),
    ...(proxyModel ? { rewardModel: proxyModel } : {}),
    lengthPenalty: lambda,
  });
  const baseline = await evaluate(0, pi0);
  const initial = { ...policyMetrics(pi0, baseline, baseline, lambda), iteration: 0 as const };
  await ctx.state.putIteration({ ...initial, finishedAt: new Date().toISOString() });
  ctx.ui.say(`pi_0: ${line(initial)}`);

  const iterations: IterationSummary[] = [];
  const samples: PairSample[] = [];
  const summarySamples: RunSummary['samples'] = [];
  let current = pi0;
  for (let t = 1; t <= spec.iterations; t++) {
    const batch = iterationPrompts(prompts, spec.prompts.perIteration, spec.generation.seed, t);
    const gen = await once<Record<string, unknown>>(ctx, t, 'generate', () =>
      offline
        ? skipped(`iteration ${t} generate`)
        : generateStage(ctx, t, 'generate', {
            policy: current,
            prompts: batch,
            n: spec.generation.samplesPerPrompt,
            seed: spec.generation.seed + t,
          }),
    );
    const judged = await once<Record<string, unknown>>(ctx, t, 'judge', () =>
      offline
        ? skipped(`iteration ${t} judge`)
        : judgeStage(ctx, t, 'judge', gen.outputs as string[], {
            type: spec.judge.type,
            ...(judgeModel ? { model: judgeModel } : {}),
            lengthPenalty: lambda,
            ...(task ? { task } : {}),
          }),
    );
    const pairsUri = `${stageDir(ctx.run, t, 'pair')}/pairs.jsonl`;
    const paired = await once(ctx, t, 'pair', async () => {
      const r = offline
        ? await writeOfflinePairs(ctx.deps.store, offline, spec.prompts.perIteration, t, pairsUri)
        : await buildPairs(ctx.deps.store, judged.outputs as string[], pairsUri, {
            strategy: spec.pairs.strategy,
            seed: spec.generation.seed * 31 + t,
          });
      return { pairs: r.pairs, meanScore: r.meanScore, samples: r.samples };
    });
    const pairCount = paired.pairs as number;
    const trained = await once(ctx, t, 'train', async () => {
      if (pairCount === 0) return { model: current, loss: null, accuracy: null };
      const r = await trainStage(ctx, t, 'train', {
        objective: 'dpo',
        base: current,
        reference: spec.reference === 'initial' ? pi0 : current,
        dataset: pairsUri,
        output: modelUri(ctx.run, t, 'policy'),
        epochs: spec.dpo.epochs,
        learningRate: spec.dpo.learningRate,
        batchSize: spec.dpo.batchSize,
        seed: spec.generation.seed + t,
      });
      return {
        model: r.model,
        // The DPO term itself: the trainer's `loss` adds nllWeight x the chosen response's NLL to it.
        loss: r.metrics.dpo_loss ?? r.metrics.loss ?? null,
        accuracy: r.metrics.accuracy ?? r.metrics.reward_accuracy ?? null,
      };
    });
    current = trained.model as string;
    const evalSamples = await evaluate(t, current);
    const metrics = policyMetrics(current, evalSamples, baseline, lambda);
    const durations: Record<string, number> = {};
    for (const s of ['generate', 'judge', 'pair', 'train', 'evaluate']) {
      const rec = await ctx.state.stage(t, s);
      if (rec) durations[s] = rec.seconds;
    }
    const it: IterationSummary = {
      ...metrics,
      iteration: t,
      pairs: pairCount,
      dpoLoss: finiteOrNull(trained.loss as number | null),
      dpoAccuracy: finiteOrNull(trained.accuracy as number | null),
      durations,
    };
    iterations.push(it);
    await ctx.state.putIteration({
      ...metrics,
      iteration: t,
      pairs: pairCount,
      dpoLoss: it.dpoLoss,
      dpoAccuracy: it.dpoAccuracy,
      finishedAt: new Date().toISOString(),
    });
    for (const p of ((paired.samples as PairSample[] | undefined) ?? []).slice(0, 3)) {
      samples.push(p);
      summarySamples.push({ iteration: t, ...p });
    }
    ctx.ui.say(
      `iteration ${t}/${spec.iterations}: ${line(it)} pairs ${pairCount} dpo loss ${fmt(it.dpoLoss)} acc ${fmt(it.dpoAccuracy, 2)}`,
    );
  }

  const best = bestIterationOf({ initial, iterations });
  const bestPolicy = best === null || best === 0 ? pi0 : (iterations[best - 1]?.policy ?? pi0);
  return {
    run: {
      name: ctx.run.name,
      namespace: ctx.run.namespace,
      seed: spec.generation.seed,
      startedAt,
      finishedAt: new Date().toISOString(),
    },
    judge: {
      type: spec.judge.type,
      lengthPenalty: spec.judge.type === 'gold' ? null : lambda,
      ...(lengthFit ? { lengthPenaltyFit: lengthFit } : {}),
    },
    ...(setup
      ? {
          rewardModel: {
            model: setup.rewardModel,
            heldOutAccuracy: setup.rewardModelAccuracy,
            labelBayesRate: setup.labelBayesRate,
          },
        }
      : {}),
    ...(setup?.preferenceModel
      ? {
          preferenceModel: {
            model: setup.preferenceModel,
            heldOutAccuracy: setup.preferenceModelAccuracy ?? null,
            labelBayesRate: setup.labelBayesRate,
          },
        }
      : {}),
    initial,
    iterations,
    bestIteration: best,
    bestPolicy,
    samples: summarySamples,
  };
}

const fmt = (x: number | null, digits = 3): string => (x === null ? '-' : x.toFixed(digits));

function line(m: PolicyMetrics): string {
  return `proxy ${fmt(m.proxyReward)} gold ${fmt(m.goldReward)} win ${fmt(m.winRate, 2)} kl ${fmt(m.kl, 2)} length ${fmt(m.meanLength, 1)} grammatical ${fmt(m.grammaticalRate, 2)}`;
}
