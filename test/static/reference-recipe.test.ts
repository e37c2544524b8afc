/**
 * One recipe for the reference task: the pipeline's reference recipe is what spec.setup defaults to, and
 * `rlhf quickstart` (no flags) runs exactly examples/quickstart.yaml. A change to one side without the
 * other fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { referenceRecipe } from '@rlhf/pipeline';
import { parseRunYaml } from '@rlhf/run-spec';
import { quickstartRun } from '../../services/cli/src/quickstart-run.js';

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
  // The data sizes of the reference task (what quickstart synthesizes outside --quick).
  assert.deepEqual(
    [setup.sftExamples, setup.preferencePairs, setup.preferenceEvalPairs, setup.prompts, setup.evalPrompts],
    [4000, 4000, 500, 2048, 256],
  );
});

test('rlhf quickstart without flags runs examples/quickstart.yaml', () => {
  const run = quickstartRun({ seed: 1, iterations: 3, variant: 'b', quick: false });
  assert.deepEqual(run.spec, quickstart);
});

test('rlhf quickstart --quick shrinks the data and training, nothing else', () => {
  const quick = quickstartRun({ seed: 1, iterations: 3, variant: 'b', quick: true }).spec;
  assert.deepEqual({ ...quick, setup: quickstart.setup, prompts: quickstart.prompts }, quickstart);
  assert.deepEqual(
    [quick.setup?.sftExamples, quick.setup?.prompts, quick.setup?.sft.epochs, quick.prompts.perIteration],
    [600, 256, 1, 64],
  );
});
