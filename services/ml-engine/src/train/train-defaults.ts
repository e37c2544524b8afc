/**
 * The training defaults on their own, loading nothing at run time, so a command line can show them in its
 * help without loading ONNX Runtime (`@rlhf/ml-engine/train-defaults`).
 */
import type { TrainOptions } from './train-options.js';

export const defaultTrainOptions: TrainOptions = {
  objective: 'sft',
  optimizer: 'adamw',
  lr: 1e-3,
  epochs: 1,
  batchSize: 16,
  gradAccum: 1,
  schedule: 'cosine',
  warmupRatio: 0.03,
  weightDecay: 0,
  maxGradNorm: 1,
  dpo: { beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0, nllWeight: 0 },
  seed: 42,
  shuffle: true,
};
