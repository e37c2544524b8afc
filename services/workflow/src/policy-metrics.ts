/** The validation metrics of one policy on the held-out prompts (see pipeline's `EvalMetrics`). */
export interface PolicyMetrics {
  /** The policy checkpoint, a model URI (`nats-obj://bucket/key`, `file://...`). */
  policy: string;
  /** Mean judge score (BT reward minus the length penalty, or the PM's) on held-out prompts: the validation reward. */
  proxyReward: number | null;
  /** Mean gold reward, when the run configures one. */
  goldReward: number | null;
  /** Win rate against the initial policy under the gold reward, ties counted half. */
  winRate: number | null;
  /** KL(pi_t || pi_0) estimated from samples, in nats. */
  kl: number | null;
  /** Mean response length in words. */
  meanLength: number | null;
  /** Share of grammatical samples in [0, 1], when the task has a grammar. */
  grammaticalRate: number | null;
}
