/**
 * The RLHFRun `rlhf quickstart` runs, from its flags. The defaults are examples/quickstart.yaml (the
 * reference task from nothing; a test keeps the two equal); --quick shrinks the data and the training to a
 * smoke test. Variants set the judge: a = reward model without length penalty, b = with the penalty fitted
 * on pi_0's samples, g = the task's gold reward.
 */
import { parseRunObject, type RlhfRun } from '@rlhf/run-spec';

export const quickstartVariants = ['a', 'b', 'g'] as const;
export type QuickstartVariant = (typeof quickstartVariants)[number];

export interface QuickstartSettings {
  seed: number;
  iterations: number;
  variant: QuickstartVariant;
  quick: boolean;
  /** SFT epochs; default the recipe's (1 with --quick). */
  sftEpochs?: number;
}

/** The --quick sizes: a run of seconds whose numbers mean nothing. */
const quickSetup = {
  prompts: 256,
  evalPrompts: 32,
  sftExamples: 600,
  preferencePairs: 400,
  preferenceEvalPairs: 100,
  lengthFitPrompts: 64,
  sft: { epochs: 1 },
  rewardModel: { epochs: 2 },
};

const judgeOf = {
  a: { type: 'reward', lengthPenalty: 0 },
  b: { type: 'reward', lengthPenalty: 'auto' },
  g: { type: 'gold' },
} as const;

export function quickstartRun(s: QuickstartSettings): RlhfRun {
  const setup: Record<string, unknown> = {
    task: 'sentiment',
    seed: s.seed,
    ...(s.quick ? quickSetup : {}),
  };
  if (s.sftEpochs !== undefined) setup.sft = { epochs: s.sftEpochs };
  return parseRunObject(
    {
      apiVersion: 'rlhf.dev/v1alpha1',
      kind: 'RLHFRun',
      metadata: { name: 'quickstart' },
      spec: {
        setup,
        judge: judgeOf[s.variant],
        prompts: { perIteration: s.quick ? 64 : 256 },
        iterations: s.iterations,
        generation: { samplesPerPrompt: 8, temperature: 0.8, maxNewTokens: 48, seed: s.seed },
        pairs: { strategy: 'maxMin' },
        dpo: { beta: 0.1, learningRate: 2.0e-3, epochs: 4, batchSize: 32, warmupRatio: 0.03, nllWeight: 4.0 },
      },
    },
    'rlhf quickstart',
  );
}
