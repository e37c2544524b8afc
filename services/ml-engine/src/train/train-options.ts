/**
 * The options of one training run, as types only: the defaults (train-defaults.ts, loaded by command-line
 * help without ONNX Runtime) and the trainer both use them without importing each other.
 */
import type { DpoOptions } from '../losses/dpo.js';
import type { ScheduleKind } from '../optim/lr-schedule.js';

export type TrainObjective = 'sft' | 'rm' | 'pm' | 'dpo';

export interface TrainOptions {
  objective: TrainObjective;
  optimizer: 'adamw' | 'sgd';
  lr: number;
  epochs: number;
  /** When set, stop after this many optimizer steps (overrides epochs for the schedule). */
  maxSteps?: number;
  batchSize: number;
  gradAccum: number;
  schedule: ScheduleKind;
  warmupRatio: number;
  weightDecay: number;
  /** Global-norm clipping; 0 turns it off. */
  maxGradNorm: number;
  dpo: DpoOptions;
  seed: number;
  shuffle: boolean;
}
