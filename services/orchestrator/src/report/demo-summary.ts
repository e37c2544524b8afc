/**
 * A realistic `summary.json` of the reference task (docs/ARCHITECTURE.md; variant b: online, BT reward model,
 * fitted length penalty, 3 iterations), with figures in the range the prototype showed. Used by the tests and
 * to preview the report's design; returns a fresh object on every call.
 */
import type { RunSummary } from './summary-types.js';

export function demoSummary(): RunSummary {
  return {
    run: {
      name: 'sentiment-demo',
      namespace: 'default',
      seed: 42,
      startedAt: '2025-01-15T09:30:00.000Z',
      finishedAt: '2025-01-15T09:31:24.500Z',
    },
    judge: { type: 'reward', lengthPenalty: 0.00112, lengthPenaltyFit: { lambda: 0.00112, r2: 0.874 } },
    rewardModel: { heldOutAccuracy: 0.832, labelBayesRate: 0.869 },
    initial: {
      iteration: 0,
      policy: 'nats-obj://rlhf-models/sft',
      proxyReward: 0.412,
      goldReward: 0.091,
      winRate: 0.5,
      kl: 0,
      meanLength: 10.6,
      grammaticalRate: 0.973,
    },
    iterations: [
      {
        iteration: 1,
        policy: 'nats-obj://rlhf-runs/default/sentiment-demo/iter-1/policy',
        proxyReward: 1.284,
        goldReward: 1.12,
        winRate: 0.741,
        kl: 1.62,
        meanLength: 8.9,
        grammaticalRate: 0.961,
        pairs: 248,
        dpoLoss: 0.412,
        dpoAccuracy: 0.823,
        durations: { generate: 6.2, judge: 1.4, pair: 0.1, train: 9.8, evaluate: 3.1 },
      },
      {
        iteration: 2,
        policy: 'nats-obj://rlhf-runs/default/sentiment-demo/iter-2/policy',
        proxyReward: 1.905,
        goldReward: 1.83,
        winRate: 0.852,
        kl: 3.41,
        meanLength: 7.4,
        grammaticalRate: 0.958,
        pairs: 251,
        dpoLoss: 0.336,
        dpoAccuracy: 0.871,
        durations: { generate: 5.9, judge: 1.3, pair: 0.1, train: 10.2, evaluate: 3.0 },
      },
      {
        iteration: 3,
        policy: 'nats-obj://rlhf-runs/default/sentiment-demo/iter-3/policy',
        proxyReward: 1.877,
        goldReward: 2.08,
        winRate: 0.884,
        kl: 5.12,
        meanLength: 6.8,
        grammaticalRate: 0.949,
        pairs: 246,
        dpoLoss: 0.301,
        dpoAccuracy: 0.894,
        durations: { generate: 5.6, judge: 1.2, pair: 0.1, train: 10.4, evaluate: 2.9 },
      },
    ],
    bestIteration: 2,
    bestPolicy: 'nats-obj://rlhf-runs/default/sentiment-demo/iter-2/policy',
    samples: [
      {
        iteration: 1,
        prompt: 'the acting',
        chosen: 'was superb . i really loved it .',
        rejected: 'was a bit dull and the plot was boring . i hated it .',
        chosenScore: 2.31,
        rejectedScore: -1.87,
      },
      {
        iteration: 2,
        prompt: 'it was a',
        chosen: 'brilliant film . the music was wonderful .',
        rejected: 'terrible , awful movie .',
        chosenScore: 2.74,
        rejectedScore: -2.05,
      },
      {
        iteration: 3,
        prompt: 'i really',
        chosen: 'enjoyed it . the story was great .',
        rejected: 'disliked it . the ending was bad and the cast was weak .',
        chosenScore: 2.96,
        rejectedScore: -1.42,
      },
    ],
  };
}
