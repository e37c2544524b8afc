import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRunObject, type RlhfRunSpec } from '@rlhf/run-spec';
import { stageTable } from './stage-table.js';
import { STAGES } from './summary-types.js';
import { iterationStages, parseUnit, setupUnit, stageUnits, unitPlacement, unitServices } from './units.js';

const specOf = (spec: Record<string, unknown>): RlhfRunSpec =>
  parseRunObject({ apiVersion: 'rlhf.dev/v1alpha1', kind: 'RLHFRun', metadata: { name: 'r' }, spec }, 'r')
    .spec;

const fromNothing = specOf({
  setup: { task: 'sentiment', seed: 1 },
  judge: { type: 'reward', lengthPenalty: 'auto' },
  prompts: { perIteration: 8 },
  iterations: 2,
});

test('the units are setup then each iteration stage, in table order, each done by its last record', () => {
  assert.deepEqual(iterationStages, ['generate', 'judge', 'pair', 'train', 'evaluate']);
  assert.deepEqual(STAGES, iterationStages, "summary.json's stage list is the table's");
  const units = stageUnits(fromNothing);
  assert.equal(units.length, 1 + 2 * 5);
  assert.deepEqual(units[0], setupUnit());
  assert.deepEqual(setupUnit().until, { iteration: 0, stage: 'evaluate' });
  assert.deepEqual(units[7], { iteration: 2, stage: 'judge', until: { iteration: 2, stage: 'judge' } });
  assert.deepEqual(parseUnit('train', 3).until, { iteration: 3, stage: 'train' });
  assert.throws(() => parseUnit('setup', 1), /the setup unit is iteration 0/);
  assert.throws(() => parseUnit('plan', 0), /unknown stage "plan": one of setup, generate/);
  assert.throws(() => parseUnit('generate', 0), /iteration stages start at iteration 1/);
});

test("a unit's services are those of its stages the spec enables", () => {
  assert.deepEqual(unitServices(fromNothing, 'setup'), ['policy-generator', 'dpo-trainer', 'reward-model']);
  assert.deepEqual(unitServices(fromNothing, 'judge'), ['reward-model']);
  assert.deepEqual(unitServices(fromNothing, 'pair'), []);
  const given = specOf({
    policy: { model: 'nats-obj://rlhf-artifacts/models/p' },
    judge: { type: 'preference', model: 'nats-obj://rlhf-artifacts/models/pm', lengthPenalty: 0 },
    prompts: { dataset: 'nats-obj://rlhf-artifacts/data/p.jsonl', perIteration: 8 },
    iterations: 1,
  });
  // Nothing to train in setup: pi_0's evaluation only; a preference judge does not score evaluations.
  assert.deepEqual(unitServices(given, 'setup'), ['policy-generator']);
  assert.deepEqual(unitServices(given, 'judge'), ['preference-model']);
  assert.deepEqual(unitServices(given, 'evaluate'), ['policy-generator']);
  const pmSetup = specOf({ ...fromNothing, judge: { type: 'preference', lengthPenalty: 0 } });
  assert.ok(unitServices(pmSetup, 'setup').includes('preference-model'), 'setup trains the judge it needs');
});

test('placement: setup and train go where training goes, one pod; pair is one CPU pod', () => {
  const spec = specOf({
    ...fromNothing,
    placement: { train: { replicas: 3, nodeSelector: { pool: 'cpu' } }, generate: { replicas: 2 } },
  });
  assert.deepEqual(unitPlacement(spec, 'setup'), { ...spec.placement.train, replicas: 1 });
  assert.deepEqual(unitPlacement(spec, 'train'), { ...spec.placement.train, replicas: 1 });
  assert.deepEqual(unitPlacement(spec, 'generate'), spec.placement.generate);
  assert.deepEqual(unitPlacement(spec, 'pair'), { replicas: 1, gpus: 0 });
});

test('engines: a stage handed to a GPU engine leaves the GPUs to it; setup trains built in, on CPU', () => {
  const spec = specOf({
    ...fromNothing,
    reference: 'previous',
    engines: { generate: { type: 'vllm' }, train: { type: 'trainjob' } },
    placement: {
      train: { gpus: 8 },
      generate: { replicas: 2, gpus: 1 },
      evaluate: { gpus: 1 },
      volumes: [{ name: 'work', claimName: 'rlhf-work', mountPath: '/work' }],
    },
  });
  const engineOf = (name: string) => stageTable.find((d) => d.name === name)?.engine(spec);
  assert.deepEqual(
    ['data', 'sft', 'baseline', 'generate', 'judge', 'pair', 'train', 'evaluate'].map(engineOf),
    ['builtin', 'builtin', 'vllm', 'vllm', 'builtin', 'builtin', 'trainjob', 'vllm'],
  );
  for (const unit of ['setup', 'generate', 'train', 'evaluate'])
    assert.equal(unitPlacement(spec, unit).gpus, 0, `${unit}'s own pod takes no GPU`);
  assert.equal(unitPlacement(spec, 'generate').replicas, 2);
});

test('every record name is unique within its phase, and every entry names a unit of its phase', () => {
  for (const phase of ['setup', 'iteration'] as const) {
    const records = stageTable.filter((d) => d.phase === phase).map((d) => d.record);
    assert.equal(new Set(records).size, records.length, `${phase} records: ${records.join(', ')}`);
  }
  assert.ok(stageTable.filter((d) => d.phase === 'setup').every((d) => d.unit === 'setup'));
});
