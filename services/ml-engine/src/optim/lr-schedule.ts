/**
 * Learning-rate schedules with linear warmup, matching `transformers.get_scheduler`: warmup rises
 * linearly from 0, `linear` then falls linearly to 0 at `totalSteps`, `cosine` follows half a cosine
 * down to 0 at `totalSteps`, `constant` stays at the base rate.
 *
 * `lrAt(step)` is the rate for the update with 0-based index `step`, i.e. after `step` updates have been
 * applied. As in HF's Trainer, the first update of a run with warmup therefore uses a rate of 0.
 */
import { invalidInput } from '../engine-error.js';

export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleOptions {
  kind: ScheduleKind;
  /** The peak rate, reached at the end of warmup. */
  lr: number;
  /** Updates in the whole run. */
  totalSteps: number;
  /** Warmup updates; when absent or 0, `ceil(totalSteps * warmupRatio)` (HF's rule). */
  warmupSteps?: number;
  warmupRatio?: number;
}

export type LrSchedule = (step: number) => number;

/** The warmup length HF derives: explicit steps win, else the ratio of the total, rounded up. */
export function warmupStepsOf(options: ScheduleOptions): number {
  if (options.warmupSteps !== undefined && options.warmupSteps > 0) return options.warmupSteps;
  return Math.ceil(options.totalSteps * (options.warmupRatio ?? 0));
}

function check(options: ScheduleOptions): void {
  const { kind, lr, totalSteps, warmupSteps, warmupRatio } = options;
  if (!['constant', 'linear', 'cosine'].includes(kind)) {
    throw invalidInput(
      `unknown schedule ${JSON.stringify(kind)}`,
      'lrScheduler',
      'use constant, linear or cosine',
    );
  }
  if (!Number.isFinite(lr) || lr < 0)
    throw invalidInput(`learning rate must be >= 0, got ${lr}`, 'learningRate');
  if (!Number.isInteger(totalSteps) || totalSteps < 1) {
    throw invalidInput(`totalSteps must be an integer >= 1, got ${totalSteps}`, 'totalSteps');
  }
  if (warmupSteps !== undefined && (!Number.isInteger(warmupSteps) || warmupSteps < 0)) {
    throw invalidInput(`warmupSteps must be an integer >= 0, got ${warmupSteps}`, 'warmupSteps');
  }
  if (warmupRatio !== undefined && !(warmupRatio >= 0 && warmupRatio <= 1)) {
    throw invalidInput(`warmupRatio must be in [0, 1], got ${warmupRatio}`, 'warmupRatio');
  }
}

export function lrSchedule(options: ScheduleOptions): LrSchedule {
  check(options);
  const { kind, lr, totalSteps } = options;
  const warmup = warmupStepsOf(options);
  return (step: number) => {
    if (!Number.isInteger(step) || step < 0)
      throw invalidInput(`step must be an integer >= 0, got ${step}`, 'step');
    if (step < warmup) return (lr * step) / Math.max(1, warmup);
    if (kind === 'constant') return lr;
    // Past totalSteps the rate stays at its final value (HF's cosine would climb back up).
    const progress = Math.min(1, (step - warmup) / Math.max(1, totalSteps - warmup));
    if (kind === 'linear') return lr * Math.max(0, 1 - progress);
    return lr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
  };
}
