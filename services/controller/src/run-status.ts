/**
 * Pure status arithmetic: the metrics of every evaluated iteration from the KV records, the best one, and
 * the state of a stage Job (its conditions and attempt count).
 */
import type { V1Job } from '@kubernetes/client-node';
import { bestIterationOf, type IterationRecord } from '@rlhf/workflow';
import type { IterationMetrics } from './resources.js';
import type { RecordsView } from './run-records.js';

const num = (x: number | null | undefined): number | undefined =>
  typeof x === 'number' && Number.isFinite(x) ? x : undefined;

/** The CRD's metrics object: finite numbers only, absent rather than null. */
export function metricsOf(r: IterationRecord): IterationMetrics {
  const m: IterationMetrics = { iteration: r.iteration, policy: r.policy, completionTime: r.finishedAt };
  const set = (k: keyof IterationMetrics, v: number | null | undefined) => {
    const x = num(v);
    if (x !== undefined) (m as unknown as Record<string, unknown>)[k] = x;
  };
  set('proxyReward', r.proxyReward);
  set('goldReward', r.goldReward);
  set('winRate', r.winRate === null ? null : Math.min(1, Math.max(0, r.winRate)));
  set('kl', r.kl);
  set('meanLength', r.meanLength);
  if (r.iteration > 0) {
    set('pairs', r.pairs);
    set('dpoLoss', r.dpoLoss);
    set('dpoAccuracy', r.dpoAccuracy);
  }
  return m;
}

export function evaluatedIterations(records: RecordsView, iterations: number): IterationMetrics[] {
  const out: IterationMetrics[] = [];
  for (let t = 0; t <= iterations; t++) {
    const r = records.iteration(t);
    if (r) out.push(metricsOf(r));
  }
  return out;
}

export function bestOf(all: readonly IterationMetrics[]): { iteration: number; policy?: string } | null {
  const [initial, ...rest] = all;
  if (initial?.iteration !== 0) return null;
  const point = (m: IterationMetrics) => ({
    iteration: m.iteration,
    proxyReward: m.proxyReward ?? null,
    goldReward: m.goldReward ?? null,
  });
  const best = bestIterationOf({ initial: point(initial), iterations: rest.map(point) });
  if (best === null) return null;
  const policy = all.find((m) => m.iteration === best)?.policy;
  return { iteration: best, ...(policy ? { policy } : {}) };
}

export type JobState = 'active' | 'complete' | 'failed' | 'suspended';

export function jobState(job: V1Job): JobState {
  const cond = (type: string) => job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
  if (cond('Complete')) return 'complete';
  if (cond('Failed')) return 'failed';
  if (job.spec?.suspend) return 'suspended';
  return 'active';
}

/** Pods started so far (failed ones and the running one). */
export function jobAttempts(job: V1Job): number {
  const s = job.status ?? {};
  return (s.failed ?? 0) + (s.succeeded ?? 0) + (s.active ?? 0);
}

export function jobFailure(job: V1Job): string {
  const c = job.status?.conditions?.find((x) => x.type === 'Failed' && x.status === 'True');
  return c ? `${c.reason ?? 'Failed'}${c.message ? `: ${c.message}` : ''}` : 'failed';
}
