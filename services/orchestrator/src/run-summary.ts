/**
 * summary.json from a finished run's stage results (run or loaded from their records): pi_0 and each
 * iteration's metrics as their evaluations recorded them, the iteration's pairs and DPO figures, the
 * judge models' accuracy from setup, and the best iteration by validation reward.
 */
import {
  bestIterationOf,
  earlier,
  type IterationSummary,
  iterationRecordNames,
  type RunSummary,
  type StageIO,
  stageTable,
} from '@rlhf/workflow';
import type { RunContext } from './run-context.js';
import type { TableRun } from './table-driver.js';

const finiteOrNull = (x: number | null | undefined): number | null =>
  typeof x === 'number' && Number.isFinite(x) ? x : null;

export function runSummary(ctx: RunContext, done: TableRun<StageIO>, startedAt: string): RunSummary {
  const { spec } = ctx;
  const setup = done.results.get(0) ?? {};
  const plan = earlier(setup.plan, 'plan', 'the summary');
  const initial = { ...earlier(setup.baseline, 'baseline', 'the summary').metrics, iteration: 0 as const };
  const iterations: IterationSummary[] = [];
  const samples: RunSummary['samples'] = [];
  for (let t = 1; t <= spec.iterations; t++) {
    const r = done.results.get(t) ?? {};
    const paired = earlier(r.pair, 'pair', 'the summary');
    const trained = earlier(r.train, 'train', 'the summary');
    const seconds = done.seconds.get(t);
    const durations: Record<string, number> = {};
    for (const s of iterationRecordNames(stageTable)) {
      const took = seconds?.get(s);
      if (took !== undefined) durations[s] = took;
    }
    iterations.push({
      ...earlier(r.evaluate, 'evaluate', 'the summary').metrics,
      iteration: t,
      pairs: paired.pairs,
      dpoLoss: finiteOrNull(trained.loss),
      dpoAccuracy: finiteOrNull(trained.accuracy),
      durations,
    });
    for (const p of paired.samples.slice(0, 3)) samples.push({ iteration: t, ...p });
  }
  const best = bestIterationOf({ initial, iterations });
  const bestPolicy =
    best === null || best === 0 ? plan.policy : (iterations[best - 1]?.policy ?? plan.policy);
  const fit = setup['length-fit'];
  const labelBayesRate = setup.data?.labelBayesRate ?? null;
  const rm = setup['reward-model'];
  const pm = setup['preference-model'];
  return {
    run: {
      name: ctx.run.name,
      namespace: ctx.run.namespace,
      seed: spec.generation.seed,
      startedAt,
      finishedAt: new Date().toISOString(),
    },
    judge: {
      type: spec.judge.type,
      lengthPenalty: spec.judge.type === 'gold' ? null : plan.lengthPenalty,
      ...(fit
        ? {
            lengthPenaltyFit: {
              lambda: fit.lambda,
              ...Object.fromEntries(
                (['r2', 'intercept', 'goldCoefficient', 'lengthCoefficient', 'samples'] as const)
                  .filter((k) => typeof fit.fit[k] === 'number' && Number.isFinite(fit.fit[k]))
                  .map((k) => [k, fit.fit[k] as number]),
              ),
            },
          }
        : {}),
    },
    ...(rm ? { rewardModel: { model: rm.model, heldOutAccuracy: rm.accuracy ?? null, labelBayesRate } } : {}),
    ...(pm
      ? { preferenceModel: { model: pm.model, heldOutAccuracy: pm.accuracy ?? null, labelBayesRate } }
      : {}),
    initial,
    iterations,
    bestIteration: best,
    bestPolicy,
    samples,
  };
}
