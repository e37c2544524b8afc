/** summary.json's types, defined with the stage table in @rlhf/workflow; `@rlhf/orchestrator/summary-types`. */
export {
  bestIterationOf,
  type InitialSummary,
  type IterationSummary,
  type JudgeModelQuality,
  type PolicyMetrics,
  type RewardPoint,
  type RunSummary,
  type SamplePair,
  STAGES,
  totalSeconds,
} from '@rlhf/workflow';
