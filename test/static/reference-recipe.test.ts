/**
 * One recipe for the reference task on both paths: the in-process pipeline (`rlhf quickstart`, the paper
 * experiment) and `rlhf run -f examples/quickstart.yaml` (the spec.setup defaults of services/run-spec plus the
 * example's own fields). A change to one side without the other fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultLoopConfig, referenceRecipe } from '@rlhf/pipeline';
import { parseRunYaml } from '@rlhf/run-spec';

const root = fileURLToPath(new URL('../..', import.meta.url));
const quickstart = parseRunYaml(
  readFileSync(`${root}examples/quickstart.yaml`, 'utf8'),
  'quickstart.yaml',
).spec;

test('spec.setup defaults are the pipeline reference recipe', () => {
  const setup = quickstart.setup;
  assert.ok(setup, 'examples/quickstart.yaml has a setup section');
  assert.deepEqual(setup.model, referenceRecipe.model);
  assert.deepEqual(setup.sft, referenceRecipe.sft);
  assert.deepEqual(setup.rewardModel, referenceRecipe.rewardModel);
  assert.equal(setup.lengthFitPrompts, referenceRecipe.lengthFitPrompts);
  // The data sizes prepareReferenceTask synthesizes (outside --quick).
  assert.deepEqual(
    [setup.sftExamples, setup.preferencePairs, setup.preferenceEvalPairs, setup.prompts, setup.evalPrompts],
    [4000, 4000, 500, 2048, 256],
  );
});

test('examples/quickstart.yaml runs the online recipe of the in-process loop', () => {
  const c = defaultLoopConfig;
  assert.equal(quickstart.judge.lengthPenalty, 'auto');
  assert.equal(quickstart.iterations, c.iterations);
  assert.equal(quickstart.prompts.perIteration, c.promptsPerIteration);
  assert.equal(quickstart.generation.samplesPerPrompt, c.samplesPerPrompt);
  assert.equal(quickstart.generation.temperature, c.temperature);
  assert.equal(quickstart.generation.maxNewTokens, c.maxNewTokens);
  assert.equal(quickstart.pairs.strategy, c.pairs);
  assert.equal(quickstart.reference, c.reference);
  const d = quickstart.dpo;
  assert.deepEqual(
    [d.learningRate, d.epochs, d.batchSize, d.warmupRatio, d.schedule, d.maxGradNorm, d.gradAccum],
    [
      c.dpo.lr,
      c.dpo.epochs,
      c.dpo.batchSize,
      c.dpo.warmupRatio,
      c.dpo.schedule,
      c.dpo.maxGradNorm,
      c.dpo.gradAccum,
    ],
  );
  assert.deepEqual(
    [d.beta, d.lossType, d.labelSmoothing, d.nllWeight],
    [c.dpo.dpo.beta, c.dpo.dpo.lossType, c.dpo.dpo.labelSmoothing, c.dpo.dpo.nllWeight],
  );
});
