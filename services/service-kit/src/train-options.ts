/**
 * The wire's TrainingHyperparameters and DpoParams as the engine's TrainOptions: every unset field takes
 * `defaultTrainOptions` (the one place the defaults live), and every set field is checked against the range
 * training.proto documents, answered INVALID_ARGUMENT naming its path (`hyperparameters.learning_rate`).
 * Shared by the three services that train (DPO/SFT, reward models, preference models).
 */
import { defaultTrainOptions, type TrainObjective, type TrainOptions } from '@rlhf/ml-engine';
import { defaultTrainingBounds, invalidArgument, RlhfError, trainingBoundFlags } from '@rlhf/platform';
import {
  DpoLossType,
  type DpoParams,
  LrSchedule,
  Optimizer,
  type TrainingHyperparameters,
} from '@rlhf/proto';

export interface TrainLimits {
  /** Largest batch_size accepted; more is RESOURCE_EXHAUSTED. */
  maxBatchSize: number;
  /** Largest number of optimizer steps (max_steps, or epochs over the data) a job may ask for. */
  maxSteps: number;
  /** Most passes over the data a job may ask for. */
  maxEpochs: number;
  /** Largest training or held-out dataset, in bytes. */
  maxDatasetBytes: number;
}

export const defaultTrainLimits: TrainLimits = {
  maxBatchSize: 4096,
  maxSteps: defaultTrainingBounds.maxSteps,
  maxEpochs: defaultTrainingBounds.maxEpochs,
  maxDatasetBytes: defaultTrainingBounds.maxDatasetBytes,
};

/** RESOURCE_EXHAUSTED for `field` asking `asked` where the server's `bound` allows `limit`. */
export function overBound(
  field: string,
  asked: string,
  bound: 'maxSteps' | 'maxEpochs' | 'maxDatasetBytes',
  limit: string,
  fix: string,
): RlhfError {
  const flag = trainingBoundFlags[bound];
  return new RlhfError('RESOURCE_EXHAUSTED', `${asked} is above the server's limit of ${limit} (${flag})`, {
    field,
    fix: `${fix}, or start the server with a larger ${flag}`,
  });
}

function finite(value: number, field: string): number {
  if (!Number.isFinite(value)) throw invalidArgument(field, `must be a finite number, got ${value}`);
  return value;
}

const optimizers: Record<number, TrainOptions['optimizer']> = {
  [Optimizer.OPTIMIZER_UNSPECIFIED]: defaultTrainOptions.optimizer,
  [Optimizer.OPTIMIZER_ADAMW]: 'adamw',
  [Optimizer.OPTIMIZER_SGD]: 'sgd',
};

const schedules: Record<number, TrainOptions['schedule']> = {
  [LrSchedule.LR_SCHEDULE_UNSPECIFIED]: defaultTrainOptions.schedule,
  [LrSchedule.LR_SCHEDULE_COSINE]: 'cosine',
  [LrSchedule.LR_SCHEDULE_LINEAR]: 'linear',
  [LrSchedule.LR_SCHEDULE_CONSTANT]: 'constant',
};

const lossTypes: Record<number, TrainOptions['dpo']['lossType']> = {
  [DpoLossType.DPO_LOSS_TYPE_UNSPECIFIED]: defaultTrainOptions.dpo.lossType,
  [DpoLossType.DPO_LOSS_TYPE_SIGMOID]: 'sigmoid',
  [DpoLossType.DPO_LOSS_TYPE_IPO]: 'ipo',
  [DpoLossType.DPO_LOSS_TYPE_HINGE]: 'hinge',
};

/** The DPO losses a request may name (every mapped value but UNSPECIFIED), in enum order. */
export const dpoLossTypesTrained: DpoLossType[] = Object.keys(lossTypes)
  .map(Number)
  .filter((t) => t !== DpoLossType.DPO_LOSS_TYPE_UNSPECIFIED);

function enumValue<T>(table: Record<number, T>, value: number, field: string): T {
  const v = table[value];
  if (v === undefined) throw invalidArgument(field, `unknown value ${value}`, 'use one of the enum values');
  return v;
}

/**
 * TrainOptions for `objective` from the request's settings. `prefix` is where the two messages sit in the
 * request (`` for StartTrainingJobRequest, `train.` for a training shard).
 */
export function trainOptionsFrom(
  objective: TrainObjective,
  hyper: TrainingHyperparameters | undefined,
  dpo: DpoParams | undefined,
  prefix = '',
  limits: TrainLimits = defaultTrainLimits,
): TrainOptions {
  const d = defaultTrainOptions;
  const h = `${prefix}hyperparameters`;
  const o: TrainOptions = { ...d, objective, dpo: { ...d.dpo } };
  if (hyper) {
    o.optimizer = enumValue(optimizers, hyper.optimizer, `${h}.optimizer`);
    o.schedule = enumValue(schedules, hyper.schedule, `${h}.schedule`);
    if (hyper.learningRate !== undefined) {
      o.lr = finite(hyper.learningRate, `${h}.learning_rate`);
      if (!(o.lr > 0))
        throw invalidArgument(
          `${h}.learning_rate`,
          `must be > 0, got ${o.lr}`,
          'try 1e-3 for tiny models, 5e-7 for 8B DPO',
        );
    }
    if (hyper.epochs !== undefined) {
      o.epochs = finite(hyper.epochs, `${h}.epochs`);
      if (!(o.epochs > 0))
        throw invalidArgument(`${h}.epochs`, `must be > 0, got ${o.epochs}`, 'leave it unset for 1');
      if (o.epochs > limits.maxEpochs)
        throw overBound(
          `${h}.epochs`,
          `${o.epochs} epochs`,
          'maxEpochs',
          String(limits.maxEpochs),
          'ask for fewer epochs',
        );
    }
    if (hyper.maxSteps > 0) {
      if (hyper.maxSteps > limits.maxSteps)
        throw overBound(
          `${h}.max_steps`,
          `${hyper.maxSteps} steps`,
          'maxSteps',
          String(limits.maxSteps),
          'ask for fewer steps',
        );
      o.maxSteps = hyper.maxSteps;
    }
    if (hyper.batchSize !== undefined) {
      if (hyper.batchSize < 1) throw invalidArgument(`${h}.batch_size`, 'must be >= 1');
      if (hyper.batchSize > limits.maxBatchSize)
        throw new RlhfError(
          'RESOURCE_EXHAUSTED',
          `${hyper.batchSize} is above the server's limit ${limits.maxBatchSize}`,
          { field: `${h}.batch_size`, fix: 'use gradient accumulation over a smaller batch' },
        );
      o.batchSize = hyper.batchSize;
    }
    if (hyper.gradAccum !== undefined) o.gradAccum = hyper.gradAccum;
    if (!(o.gradAccum >= 1 && o.gradAccum <= o.batchSize))
      throw invalidArgument(
        `${h}.grad_accum`,
        `must be in 1..batch_size (${o.batchSize}), got ${o.gradAccum}`,
      );
    if (hyper.warmupRatio !== undefined) {
      o.warmupRatio = finite(hyper.warmupRatio, `${h}.warmup_ratio`);
      if (!(o.warmupRatio >= 0 && o.warmupRatio < 1))
        throw invalidArgument(`${h}.warmup_ratio`, `must be in [0, 1), got ${o.warmupRatio}`);
    }
    o.weightDecay = finite(hyper.weightDecay, `${h}.weight_decay`);
    if (o.weightDecay < 0) throw invalidArgument(`${h}.weight_decay`, `must be >= 0, got ${o.weightDecay}`);
    if (hyper.maxGradNorm !== undefined) {
      o.maxGradNorm = finite(hyper.maxGradNorm, `${h}.max_grad_norm`);
      if (o.maxGradNorm < 0)
        throw invalidArgument(
          `${h}.max_grad_norm`,
          `must be >= 0, got ${o.maxGradNorm}`,
          'use 0 to turn clipping off',
        );
    }
    if (hyper.seed !== undefined) o.seed = hyper.seed;
    if (hyper.shuffle !== undefined) o.shuffle = hyper.shuffle;
  }
  if (dpo && objective === 'dpo') {
    const p = `${prefix}dpo`;
    if (dpo.beta !== undefined) {
      o.dpo.beta = finite(dpo.beta, `${p}.beta`);
      if (!(o.dpo.beta > 0))
        throw invalidArgument(`${p}.beta`, `must be > 0, got ${o.dpo.beta}`, 'the paper uses 0.1');
    }
    o.dpo.lossType = enumValue(lossTypes, dpo.lossType, `${p}.loss_type`);
    o.dpo.labelSmoothing = finite(dpo.labelSmoothing, `${p}.label_smoothing`);
    if (!(o.dpo.labelSmoothing >= 0 && o.dpo.labelSmoothing < 0.5))
      throw invalidArgument(`${p}.label_smoothing`, `must be in [0, 0.5), got ${o.dpo.labelSmoothing}`);
    if (o.dpo.labelSmoothing > 0 && o.dpo.lossType !== 'sigmoid')
      throw invalidArgument(`${p}.label_smoothing`, 'applies to the sigmoid loss only', 'set it to 0');
    o.dpo.nllWeight = finite(dpo.nllWeight, `${p}.nll_weight`);
    if (o.dpo.nllWeight < 0) throw invalidArgument(`${p}.nll_weight`, `must be >= 0, got ${o.dpo.nllWeight}`);
  }
  return o;
}
