/**
 * One variant of the reference task's online iterations, in one process, as JSON lines:
 *   node --import tsx services/pipeline/scripts/reference-experiment.ts [--variant a|b|g] [--seed N] [--sft-epochs N] [--quick]
 * Variants: a = judged by the RM without penalty, b = with the fitted length penalty, g = judged by the gold.
 */
import { parseArgs } from 'node:util';
import {
  defaultLoopConfig,
  prepareReferenceTask,
  referenceRecipe,
  runLocalIterations,
} from '../src/index.js';

const { values } = parseArgs({
  options: {
    variant: { type: 'string', default: 'b' },
    seed: { type: 'string', default: '1' },
    'sft-epochs': { type: 'string', default: String(referenceRecipe.sft.epochs) },
    quick: { type: 'boolean', default: false },
  },
});
const started = Date.now();
const log = (event: string, data: object): void => {
  process.stdout.write(`${JSON.stringify({ event, t: (Date.now() - started) / 1000, ...data })}\n`);
};
const seed = Number(values.seed);
const setup = await prepareReferenceTask({
  seed,
  sftEpochs: Number(values['sft-epochs']),
  quick: values.quick === true,
  onStage: log,
});
const variant = values.variant as string;
const result = await runLocalIterations({
  policy: setup.policy,
  rewardModel: setup.rewardModel,
  prompts: setup.prompts,
  evalPrompts: setup.evalPrompts,
  oracle: setup.oracle,
  config: {
    ...defaultLoopConfig,
    seed,
    promptsPerIteration: values.quick ? 64 : 256,
    judge: variant === 'g' ? 'gold' : 'reward',
    lengthPenalty: variant === 'b' ? setup.lengthFit.lambda : 0,
  },
  onIteration: (r) => log('iteration', { variant, ...r }),
});
log('initial', result.initial);
log('done', { seconds: (Date.now() - started) / 1000 });
