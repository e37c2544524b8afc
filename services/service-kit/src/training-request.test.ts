/**
 * StartTrainingJob requests as plans: each objective's fields land in the same plan, and an objective the
 * process does not train is FAILED_PRECONDITION naming the service that trains it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RlhfError } from '@rlhf/platform';
import { DpoLossType, StartTrainingJobRequest, TrainingObjective } from '@rlhf/proto';
import { planStartTrainingJob } from './training-request.js';

const ref = (uri: string) => ({ uri, revision: '', digest: '' });
const request = (objective: TrainingObjective, more: Partial<StartTrainingJobRequest> = {}) =>
  StartTrainingJobRequest.fromPartial({
    objective,
    model: ref('file:///models/base'),
    dataset: { uri: 'file:///data/train.jsonl', format: 0 },
    outputUri: 'file:///models/out',
    ...more,
  });

function refusal(fn: () => unknown): RlhfError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RlhfError, String(err));
    return err;
  }
  assert.fail('expected a refusal');
}

test('each objective plans from the same fields; DPO keeps its loss and reference', () => {
  const dpo = planStartTrainingJob(
    request(TrainingObjective.TRAINING_OBJECTIVE_DPO, {
      reference: ref('file:///models/ref'),
      dpo: { lossType: DpoLossType.DPO_LOSS_TYPE_IPO, labelSmoothing: 0, nllWeight: 0, referenceMode: 0 },
    }),
    ['sft', 'dpo'],
  );
  assert.equal(dpo.objective, 'dpo');
  assert.equal(dpo.options.dpo.lossType, 'ipo');
  assert.equal(dpo.reference?.field, 'reference');
  assert.equal(dpo.base.field, 'model');
  const rm = planStartTrainingJob(
    request(TrainingObjective.TRAINING_OBJECTIVE_REWARD_MODEL, {
      evalDataset: { uri: 'file:///data/eval.jsonl', format: 0 },
    }),
    ['rm'],
  );
  assert.equal(rm.objective, 'rm');
  assert.equal(rm.eval?.field, 'eval_dataset.uri');
  assert.equal(rm.reference, null);
});

test("objectives: unspecified is INVALID_ARGUMENT; another process's is FAILED_PRECONDITION naming it", () => {
  const none = refusal(() => planStartTrainingJob(request(0), ['sft', 'dpo']));
  assert.equal(none.code, 'INVALID_ARGUMENT');
  assert.equal(none.field, 'objective');
  assert.match(none.describe(), /SFT, DPO/);
  const pm = refusal(() =>
    planStartTrainingJob(request(TrainingObjective.TRAINING_OBJECTIVE_PREFERENCE_MODEL), ['sft', 'dpo']),
  );
  assert.equal(pm.code, 'FAILED_PRECONDITION');
  assert.equal(pm.field, 'objective');
  assert.match(pm.describe(), /PREFERENCE_MODEL/);
  assert.match(pm.describe(), /rlhf serve preference-model/);
  const evalForDpo = refusal(() =>
    planStartTrainingJob(
      request(TrainingObjective.TRAINING_OBJECTIVE_DPO, {
        evalDataset: { uri: 'file:///data/eval.jsonl', format: 0 },
      }),
      ['dpo'],
    ),
  );
  assert.equal(evalForDpo.field, 'eval_dataset.uri');
});

test('a Hub model may be the base model but never the output', () => {
  const plan = planStartTrainingJob(
    request(TrainingObjective.TRAINING_OBJECTIVE_DPO, { model: ref('hf://HuggingFaceTB/SmolLM2-135M') }),
    ['dpo'],
  );
  assert.equal(plan.base.ref.uri, 'hf://HuggingFaceTB/SmolLM2-135M');
  const out = refusal(() =>
    planStartTrainingJob(request(TrainingObjective.TRAINING_OBJECTIVE_SFT, { outputUri: 'hf://org/mine' }), [
      'sft',
    ]),
  );
  assert.equal(out.code, 'INVALID_ARGUMENT');
  assert.equal(out.field, 'output_uri');
  assert.match(out.describe(), /read-only/);
});
