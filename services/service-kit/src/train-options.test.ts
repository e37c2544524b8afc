/** Wire hyperparameters to engine options: unset fields take the engine defaults; bad ones name their path. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultTrainOptions, type StepReport } from '@rlhf/ml-engine';
import { RlhfError } from '@rlhf/platform';
import { DpoLossType, DpoParams, LrSchedule, Optimizer, TrainingHyperparameters } from '@rlhf/proto';
import { defaultTrainLimits, trainOptionsFrom } from './train-options.js';
import { trainingMetricsOf } from './training-metrics.js';

test('unset fields take defaultTrainOptions; set fields are used', () => {
  assert.deepEqual(trainOptionsFrom('dpo', undefined, undefined), {
    ...defaultTrainOptions,
    objective: 'dpo',
  });
  assert.deepEqual(
    trainOptionsFrom('dpo', TrainingHyperparameters.fromPartial({}), DpoParams.fromPartial({})),
    { ...defaultTrainOptions, objective: 'dpo' },
  );
  const o = trainOptionsFrom(
    'dpo',
    TrainingHyperparameters.fromPartial({
      optimizer: Optimizer.OPTIMIZER_SGD,
      learningRate: 0.5,
      epochs: 1.5,
      maxSteps: 7,
      batchSize: 8,
      gradAccum: 2,
      schedule: LrSchedule.LR_SCHEDULE_CONSTANT,
      warmupRatio: 0,
      maxGradNorm: 0,
      seed: 0,
      shuffle: false,
    }),
    DpoParams.fromPartial({ beta: 0.5, lossType: DpoLossType.DPO_LOSS_TYPE_IPO, nllWeight: 1 }),
  );
  assert.deepEqual(o, {
    ...defaultTrainOptions,
    objective: 'dpo',
    optimizer: 'sgd',
    lr: 0.5,
    epochs: 1.5,
    maxSteps: 7,
    batchSize: 8,
    gradAccum: 2,
    schedule: 'constant',
    warmupRatio: 0,
    maxGradNorm: 0,
    seed: 0,
    shuffle: false,
    dpo: { beta: 0.5, lossType: 'ipo', labelSmoothing: 0, nllWeight: 1 },
  });
  assert.equal(
    trainOptionsFrom('sft', undefined, DpoParams.fromPartial({ beta: -1 })).dpo.beta,
    0.1,
    'SFT ignores dpo',
  );
});

test('bad values are INVALID_ARGUMENT (or RESOURCE_EXHAUSTED above a limit) naming the field path', () => {
  const cases: Array<[Partial<TrainingHyperparameters>, Partial<DpoParams>, string, string]> = [
    [{ learningRate: 0 }, {}, 'train.hyperparameters.learning_rate', 'INVALID_ARGUMENT'],
    [{ learningRate: Number.NaN }, {}, 'train.hyperparameters.learning_rate', 'INVALID_ARGUMENT'],
    [{ epochs: 0 }, {}, 'train.hyperparameters.epochs', 'INVALID_ARGUMENT'],
    [{ batchSize: 0 }, {}, 'train.hyperparameters.batch_size', 'INVALID_ARGUMENT'],
    [{ batchSize: 100_000 }, {}, 'train.hyperparameters.batch_size', 'RESOURCE_EXHAUSTED'],
    [{ epochs: 1e9 }, {}, 'train.hyperparameters.epochs', 'RESOURCE_EXHAUSTED'],
    [{ maxSteps: 2_000_000 }, {}, 'train.hyperparameters.max_steps', 'RESOURCE_EXHAUSTED'],
    [{ batchSize: 4, gradAccum: 5 }, {}, 'train.hyperparameters.grad_accum', 'INVALID_ARGUMENT'],
    [{ warmupRatio: 1 }, {}, 'train.hyperparameters.warmup_ratio', 'INVALID_ARGUMENT'],
    [{ weightDecay: -1 }, {}, 'train.hyperparameters.weight_decay', 'INVALID_ARGUMENT'],
    [{ maxGradNorm: -1 }, {}, 'train.hyperparameters.max_grad_norm', 'INVALID_ARGUMENT'],
    [{ optimizer: 9 as Optimizer }, {}, 'train.hyperparameters.optimizer', 'INVALID_ARGUMENT'],
    [{}, { beta: 0 }, 'train.dpo.beta', 'INVALID_ARGUMENT'],
    [{}, { labelSmoothing: 0.5 }, 'train.dpo.label_smoothing', 'INVALID_ARGUMENT'],
    [
      {},
      { labelSmoothing: 0.1, lossType: DpoLossType.DPO_LOSS_TYPE_HINGE },
      'train.dpo.label_smoothing',
      'INVALID_ARGUMENT',
    ],
    [{}, { nllWeight: -1 }, 'train.dpo.nll_weight', 'INVALID_ARGUMENT'],
  ];
  for (const [h, d, field, code] of cases) {
    assert.throws(
      () =>
        trainOptionsFrom('dpo', TrainingHyperparameters.fromPartial(h), DpoParams.fromPartial(d), 'train.'),
      (e: unknown) => e instanceof RlhfError && e.field === field && e.code === code,
      field,
    );
  }
});

test("a bound's error names the limit and the serve flag that raises it", () => {
  const limits = { ...defaultTrainLimits, maxSteps: 50, maxEpochs: 3 };
  const cases: Array<[Partial<TrainingHyperparameters>, RegExp]> = [
    [
      { maxSteps: 51 },
      /^hyperparameters\.max_steps: 51 steps is above the server's limit of 50 \(--train-max-steps\)/,
    ],
    [
      { epochs: 4 },
      /^hyperparameters\.epochs: 4 epochs is above the server's limit of 3 \(--train-max-epochs\)/,
    ],
  ];
  for (const [h, message] of cases) {
    assert.throws(
      () => trainOptionsFrom('sft', TrainingHyperparameters.fromPartial(h), undefined, '', limits),
      (e: unknown) => e instanceof RlhfError && e.code === 'RESOURCE_EXHAUSTED' && message.test(e.describe()),
    );
  }
  // At the limit is fine.
  const o = trainOptionsFrom(
    'sft',
    TrainingHyperparameters.fromPartial({ maxSteps: 50, epochs: 3 }),
    undefined,
    '',
    limits,
  );
  assert.equal(o.maxSteps, 50);
  assert.equal(o.epochs, 3);
});

test('a step report becomes TrainingMetrics with the named DPO figures in their own fields', () => {
  const r: StepReport = {
    step: 3,
    totalSteps: 6,
    epoch: 0,
    lr: 1e-3,
    metrics: {
      loss: 0.6,
      dpo_loss: 0.5,
      nll: 1,
      chosen_reward: 0.2,
      rejected_reward: -0.1,
      margin: 0.3,
      accuracy: 0.75,
    },
    gradNorm: 2,
    tokens: 100,
    tokensPerSecond: 1000,
    elapsedMs: 300,
    etaMs: 300,
  };
  const m = trainingMetricsOf(r, { epochs: 2 });
  assert.equal(m.epoch, 1);
  assert.equal(m.loss, 0.6);
  assert.equal(m.margin, 0.3);
  assert.equal(m.accuracy, 0.75);
  assert.equal(m.chosenReward, 0.2);
  assert.equal(m.rejectedReward, -0.1);
  assert.equal(m.etaSeconds, 0.3);
  assert.deepEqual(m.extra, { tokens: 100, dpo_loss: 0.5, nll: 1 });
  const sft = trainingMetricsOf({ ...r, metrics: { loss: 2 } }, { epochs: 1 });
  assert.equal(sft.margin, undefined);
  assert.equal(sft.accuracy, undefined);
});
