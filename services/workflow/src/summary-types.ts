/**
 * `summary.json`, the machine-readable end-of-run record of `rlhf run` (online iterative DPO, Algorithm 2 of
 * arXiv 2405.07863; see docs/ARCHITECTURE.md). The HTML report is rendered from it and nothing else.
 * Field names are a stable contract: add fields, do not rename them. A metric a run did not measure is null
 * (JSON has no NaN; writers must map NaN to null).
 */

import type { PolicyMetrics } from './policy-metrics.js';
import { iterationRecordNames, stageTable } from './stage-table.js';

export type { PolicyMetrics } from './policy-metrics.js';

/** The stages of one iteration, in table order; `IterationSummary.durations` is keyed by these. */
export const STAGES: readonly string[] = iterationRecordNames(stageTable);

/** One iteration t = 1..T: its evaluation, its training and how long each stage took. */
export interface IterationSummary extends PolicyMetrics {
  /** 1-based iteration number. */
  iteration: number;
  /** Preference pairs the iteration trained on (after dropping ties and identical texts). */
  pairs: number;
  /** Final DPO training loss of the iteration. */
  dpoLoss: number | null;
  /** Final DPO reward accuracy (share of pairs with chosen implicit reward above rejected). */
  dpoAccuracy: number | null;
  /** Wall-clock seconds per stage (keys from `STAGES`; other keys are shown after them). */
  durations: Record<string, number>;
}

/** The initial (SFT) policy pi_0, evaluated like an iteration; it is iteration 0 in tables and charts. */
export type InitialSummary = PolicyMetrics & { iteration: 0 };

/** One preference pair as the judge built it, kept as an example for readers of the report. */
export interface SamplePair {
  /** Iteration that generated and trained on the pair. */
  iteration: number;
  /** The prompt text. */
  prompt: string;
  /** The preferred response (model output: untrusted text). */
  chosen: string;
  /** The dispreferred response (model output: untrusted text). */
  rejected: string;
  /** Judge score of the chosen response. */
  chosenScore: number;
  /** Judge score of the rejected response. */
  rejectedScore: number;
}

/** Quality of a learned judge against the simulated annotators' labels. */
export interface JudgeModelQuality {
  /** The model's URI, when the run trained it (setup). */
  model?: string;
  /** Accuracy on held-out labelled pairs. */
  heldOutAccuracy: number | null;
  /** The Bayes rate of the label model: the best accuracy any judge can reach on those labels. */
  labelBayesRate: number | null;
}

/** The whole of `summary.json`. */
export interface RunSummary {
  /** Which run this was. */
  run: {
    /** The `RLHFRun` name. */
    name: string;
    /** Its namespace (`default` for local runs). */
    namespace: string;
    /** The run's seed (`generation.seed`). */
    seed: number;
    /** ISO 8601 start time. */
    startedAt: string;
    /** ISO 8601 end time. */
    finishedAt: string;
  };
  /** How responses were judged. */
  judge: {
    /** `reward` (BT RM), `preference` (PM tournament), `gold`, ... */
    type: string;
    /** Lambda of the length penalty `r - lambda * chars`, null when there is none. */
    lengthPenalty: number | null;
    /**
     * Present when `lengthPenalty: auto` fitted lambda by regressing the RM score on gold and length (characters)
     * over pi_0's samples: r ~ intercept + goldCoefficient * gold + lengthCoefficient * chars, lambda =
     * max(lengthCoefficient, 0); r2 is the fit's coefficient of determination, samples how many it used.
     */
    lengthPenaltyFit?: {
      lambda: number;
      r2?: number;
      intercept?: number;
      goldCoefficient?: number;
      lengthCoefficient?: number;
      samples?: number;
    };
  };
  /** Present when the run trained or used a BT reward model. */
  rewardModel?: JudgeModelQuality;
  /** Present when the run trained or used a pairwise preference model. */
  preferenceModel?: JudgeModelQuality;
  /** pi_0's metrics. */
  initial: InitialSummary;
  /** Iterations 1..T in order. */
  iterations: IterationSummary[];
  /** Best iteration by validation (proxy) reward, 0 = the initial policy; null when nothing was measured. */
  bestIteration: number | null;
  /** The model URI of the best iteration's policy (pi_0's when the best is 0). */
  bestPolicy: string;
  /** Example pairs, a few per iteration. */
  samples: SamplePair[];
}

/** The part of a policy's record that `bestIterationOf` reads. */
export type RewardPoint = Pick<IterationSummary, 'iteration' | 'proxyReward' | 'goldReward'>;

/**
 * The best iteration by validation reward: the highest `proxyReward` over the initial policy (iteration 0) and
 * every iteration; when no policy has a proxy reward, the highest `goldReward`; ties go to the earlier
 * iteration; null when neither was measured. Non-finite values count as missing.
 */
export function bestIterationOf(summary: {
  initial: RewardPoint;
  iterations: readonly RewardPoint[];
}): number | null {
  const all = [summary.initial, ...summary.iterations];
  const valid = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
  const key = all.some((p) => valid(p.proxyReward)) ? 'proxyReward' : 'goldReward';
  let best: RewardPoint | null = null;
  for (const p of all) {
    const v = p[key];
    if (!valid(v)) continue;
    const b = best?.[key];
    if (best === null || !valid(b) || v > b || (v === b && p.iteration < best.iteration)) best = p;
  }
  return best?.iteration ?? null;
}

/** Total wall-clock seconds of an iteration (sum of its finite stage durations). */
export function totalSeconds(durations: Readonly<Record<string, number>>): number {
  return Object.values(durations).reduce((a, s) => (Number.isFinite(s) ? a + s : a), 0);
}
