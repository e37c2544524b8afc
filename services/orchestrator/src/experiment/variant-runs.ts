/**
 * The paper's experiment as RLHFRuns (docs/ARCHITECTURE.md). Variant b carries the base run's setup (data,
 * SFT, the reward model, the preference model when p is asked for, the length fit); every other variant is
 * a run without setup that points at b's artifacts, so all variants of a seed share one pi_0 and one judge:
 *   a  online, RM judge, no length penalty        b  online, RM judge, fitted length penalty (the base run)
 *   g  online, gold judge (an upper bound)        p  online, preference-model tournament, no length penalty
 *   o  offline: one DPO round on best-vs-worst pairs of pi_0's samples for as many prompts as the online
 *      iterations use in total, under b's penalized RM
 *   c  offline: one DPO round on the same number of annotator-labelled pairs (spec.pairs.dataset)
 * Plain data: building the runs needs no NATS.
 */
import { referenceRecipe } from '@rlhf/pipeline';
import { invalidArgument } from '@rlhf/platform';
import { parseRunObject, type RlhfRun, type RlhfRunSpec } from '@rlhf/run-spec';
import { dataUri, modelUri, type RunRef } from '@rlhf/workflow';

import { experimentVariants, type Variant } from './variant-names.js';

export { experimentVariants, type Variant };

/** What b's setup leaves for the other variants of its seed. */
export interface SharedSetup {
  policy: string;
  rewardModel: string;
  preferenceModel?: string;
  prompts: string;
  evalPrompts: string;
  labelledPairs: string;
  /** The fitted (or given) length penalty of b. */
  lambda: number;
  task: 'sentiment';
}

export function parseVariants(list: string, flag = '--variants'): Variant[] {
  const out: Variant[] = [];
  for (const v of list.split(',').map((x) => x.trim())) {
    if (!(experimentVariants as readonly string[]).includes(v))
      throw invalidArgument(
        flag,
        `unknown variant "${v}"`,
        `use a comma-separated subset of ${experimentVariants.join(',')}`,
      );
    if (!out.includes(v as Variant)) out.push(v as Variant);
  }
  // b trains the setup every other variant uses, so it always runs, and first.
  return ['b', ...out.filter((v) => v !== 'b')];
}

export function variantRunName(base: RlhfRun, seed: number, v: Variant): string {
  return `${base.metadata.name}-s${seed}-${v}`;
}

function runOf(base: RlhfRun, name: string, spec: RlhfRunSpec, source: string): RlhfRun {
  return parseRunObject(
    {
      apiVersion: base.apiVersion,
      kind: base.kind,
      metadata: { name, ...(base.metadata.namespace ? { namespace: base.metadata.namespace } : {}) },
      spec,
    },
    source,
  );
}

/**
 * Variants a and b may run past the base run's horizon (`horizon`): their first iterations are the same runs
 * (each iteration trains from the previous policy alone), and the later ones show over-optimisation. Every
 * other variant keeps the base horizon, and the offline ones their prompt count, so the comparison at the
 * base horizon is unchanged.
 */
export const longHorizonVariants: readonly Variant[] = ['a', 'b'];

/** Variant b of a seed: the base run with the seed in its setup and sampling, and a PM when p runs. */
export function setupRun(
  base: RlhfRun,
  seed: number,
  withPreferenceModel: boolean,
  horizon = base.spec.iterations,
): RlhfRun {
  const setup = base.spec.setup;
  if (!setup)
    throw invalidArgument(
      'spec.setup',
      'the experiment needs a base run with spec.setup',
      'use examples/quickstart.yaml',
    );
  if (base.spec.judge.type !== 'reward')
    throw invalidArgument(
      'spec.judge.type',
      'variant b is the reward-model judge',
      'set spec.judge.type: reward',
    );
  const pm = referenceRecipe.preferenceModel;
  const spec: RlhfRunSpec = {
    ...base.spec,
    setup: {
      ...setup,
      seed,
      ...(withPreferenceModel
        ? {
            preferenceModel: setup.preferenceModel ?? {
              epochs: pm.epochs,
              learningRate: pm.learningRate,
              batchSize: pm.batchSize,
            },
            // The PM reads a prompt and two responses. Every model keeps its shapes (RoPE has no weights), but
            // SFT and RM examples are no longer cut at the smaller length, so b's numbers move a little with p.
            model: {
              ...setup.model,
              maxPositionEmbeddings: Math.max(setup.model.maxPositionEmbeddings, pm.maxPositionEmbeddings),
            },
          }
        : {}),
    },
    iterations: Math.max(horizon, base.spec.iterations),
    generation: { ...base.spec.generation, seed },
  };
  return runOf(base, variantRunName(base, seed, 'b'), spec, `experiment seed ${seed} variant b`);
}

/** b's artifacts, where setup writes them (services/orchestrator/src/setup-stages.ts). */
export function sharedSetupOf(ref: RunRef, lambda: number, withPreferenceModel: boolean): SharedSetup {
  return {
    policy: modelUri(ref, 0, 'sft'),
    rewardModel: modelUri(ref, 0, 'rm'),
    ...(withPreferenceModel ? { preferenceModel: modelUri(ref, 0, 'pm') } : {}),
    prompts: dataUri(ref, 'prompts.jsonl'),
    evalPrompts: dataUri(ref, 'eval.jsonl'),
    labelledPairs: dataUri(ref, 'preferences.jsonl'),
    lambda,
    task: 'sentiment',
  };
}

/** A variant other than b, on b's setup. */
export function variantRun(
  base: RlhfRun,
  seed: number,
  v: Exclude<Variant, 'b'>,
  s: SharedSetup,
  horizon = base.spec.iterations,
): RlhfRun {
  const { setup: _setup, ...rest } = base.spec;
  const offline = v === 'c' || v === 'o';
  const judge: RlhfRunSpec['judge'] =
    v === 'g'
      ? { type: 'gold', lengthPenalty: 0, task: s.task }
      : v === 'p'
        ? { type: 'preference', model: s.preferenceModel as string, lengthPenalty: 0, task: s.task }
        : { type: 'reward', model: s.rewardModel, lengthPenalty: v === 'a' ? 0 : s.lambda, task: s.task };
  if (v === 'p' && !s.preferenceModel) throw new Error('variant p needs the preference model of b');
  const spec: RlhfRunSpec = {
    ...rest,
    policy: { model: s.policy },
    judge,
    prompts: {
      dataset: s.prompts,
      eval: s.evalPrompts,
      perIteration: offline
        ? base.spec.prompts.perIteration * base.spec.iterations
        : base.spec.prompts.perIteration,
    },
    iterations: offline
      ? 1
      : longHorizonVariants.includes(v)
        ? Math.max(horizon, base.spec.iterations)
        : base.spec.iterations,
    generation: { ...base.spec.generation, seed },
    pairs: { ...base.spec.pairs, ...(v === 'c' ? { dataset: s.labelledPairs } : {}) },
  };
  return runOf(base, variantRunName(base, seed, v), spec, `experiment seed ${seed} variant ${v}`);
}
