/**
 * One engine StepReport as the wire's TrainingMetrics: the named figures of training.proto in their own
 * fields (loss, rewards, margin, accuracy), every other metric the objective reports in `extra`.
 */
import type { StepReport, TrainOptions } from '@rlhf/ml-engine';
import type { TrainingMetrics } from '@rlhf/proto';

const named = new Set(['loss', 'chosen_reward', 'rejected_reward', 'margin', 'accuracy']);

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
  if (m.chosen_reward !== undefined) out.chosenReward = m.chosen_reward;
  if (m.rejected_reward !== undefined) out.rejectedReward = m.rejected_reward;
  if (m.margin !== undefined) out.margin = m.margin;
  if (m.accuracy !== undefined) out.accuracy = m.accuracy;
  return out;
}
