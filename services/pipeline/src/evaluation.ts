/**
 * Step 6 of Algorithm 2: how good is pi_t. On held-out prompts, one sample per prompt from pi_t (and the
 * cached samples of pi_0): proxy reward (the judge's raw score), gold reward where the task has one, win rate
 * against pi_0 under the gold (ties count half), KL(pi_t || pi_0) estimated as the mean over pi_t's samples
 * of log pi_t(y) - log pi_0(y), mean length in words, and the share of grammatical samples.
 */
export interface EvalSample {
  prompt: string;
  completion: string;
  endedWithEos: boolean;
  /** Sum of the token log-probs under the policy that sampled it. */
  logp: number;
  /** Sum of the token log-probs under pi_0. */
  logpInitial: number;
  proxyReward: number;
  gold: number | null;
  grammatical: boolean | null;
  words: number;
}

export interface EvalMetrics {
  proxyReward: number;
  goldReward: number | null;
  winRate: number | null;
  kl: number;
  meanLength: number;
  grammaticalRate: number | null;
  samples: number;
}

const mean = (xs: readonly number[]): number =>
  xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;

/** `baseline[i]` is pi_0's sample for the same prompt as `samples[i]`. */
export function evaluationMetrics(
  samples: readonly EvalSample[],
  baseline: readonly EvalSample[],
): EvalMetrics {
  const golds = samples.map((s) => s.gold);
  const hasGold = golds.every((g) => g !== null);
  let winRate: number | null = null;
  if (hasGold && baseline.length === samples.length) {
    winRate = mean(
      samples.map((s, i) => {
        const a = s.gold as number;
        const b = (baseline[i] as EvalSample).gold as number;
        return a > b ? 1 : a === b ? 0.5 : 0;
      }),
    );
  }
  const gram = samples.map((s) => s.grammatical);
  return {
    proxyReward: mean(samples.map((s) => s.proxyReward)),
    goldReward: hasGold ? mean(golds as number[]) : null,
    winRate,
    kl: mean(samples.map((s) => s.logp - s.logpInitial)),
    meanLength: mean(samples.map((s) => s.words)),
    grammaticalRate: gram.every((g) => g !== null) ? mean(gram.map((g) => (g ? 1 : 0))) : null,
    samples: samples.length,
  };
}

/**
 * Win rate against the baseline under the proxy judge: `samples[i]` against `baseline[i]` (the baseline's
 * sample for the same prompt and sample index) by proxy reward, ties counted half. Null when the lists differ
 * in length or a proxy reward is missing (NaN): no reward model judged the samples.
 */
export function judgeWinRate(samples: readonly EvalSample[], baseline: readonly EvalSample[]): number | null {
  if (samples.length === 0 || samples.length !== baseline.length) return null;
  let wins = 0;
  for (const [i, s] of samples.entries()) {
    const a = s.proxyReward;
    const b = (baseline[i] as EvalSample).proxyReward;
    if (!Number.isFinite(a) || !Number.isFinite(b)) return null;
    wins += a > b ? 1 : a === b ? 0.5 : 0;
  }
  return wins / samples.length;
}
