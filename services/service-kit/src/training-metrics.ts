/**
 * One engine StepReport as the wire's TrainingMetrics: the named figures of training.proto in their own
 * fields (loss, rewards, margin, accuracy; a reward model's chosen/rejected scores are its rewards), every
 * other metric the objective reports in `extra`.
 */
import type { StepReport, TrainOptions } from '@rlhf/ml-engine';
import type { TrainingMetrics } from '@rlhf/proto';

const named = new Set([
  'loss',
  'chosen_reward',
  'rejected_reward',
  'chosen_score',
  'rejected_score',
  'margin',
  'accuracy',
]);

export function trainingMetricsOf(
  r: StepReport,
  options: Pick<TrainOptions, 'epochs' | 'maxSteps'>,
): TrainingMetrics {
  const m = r.metrics;
  const extra: Record<string, number> = { tokens: r.tokens };
  for (const [k, v] of Object.entries(m)) if (!named.has(k) && Number.isFinite(v)) extra[k] = v;
  const out: TrainingMetrics = {
    step: r.step,
    totalSteps: r.totalSteps,
    // Without max_steps the schedule spans exactly `epochs`, so the fraction done converts directly.
    epoch: options.maxSteps === undefined ? (r.step / r.totalSteps) * options.epochs : r.epoch,
    loss: m.loss ?? Number.NaN,
    learningRate: r.lr,
    gradNorm: r.gradNorm,
    tokensPerSecond: r.tokensPerSecond,
    etaSeconds: r.etaMs / 1000,
    extra,
    time: new Date(),
  };
  // A reward model's rewards are its scores r(x, y_w) and r(x, y_l) (the engine's chosen/rejected_score).
  const chosen = m.chosen_reward ?? m.chosen_score;
  const rejected = m.rejected_reward ?? m.rejected_score;
  if (chosen !== undefined) out.chosenReward = chosen;
  if (rejected !== undefined) out.rejectedReward = rejected;
  if (m.margin !== undefined) out.margin = m.margin;
  if (m.accuracy !== undefined) out.accuracy = m.accuracy;
  return out;
}
