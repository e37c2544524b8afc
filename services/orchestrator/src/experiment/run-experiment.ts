/**
 * `rlhf experiment`: the paper's experiment through the platform's own path. Every variant of every seed is
 * an RLHFRun reconciled by `runLocal` (stage workers over NATS, state in JetStream KV), all on one NATS so
 * the variants can read b's setup artifacts. Each run keeps its output directory (summary.json, report.html)
 * and is resumable like any run: running the same experiment again skips what is finished. At the end, the
 * table like the paper's Tables 2 and 4 goes to <out>/RESULTS.md and the rows to <out>/results.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ResultMetrics, renderResults, type VariantResult } from '@rlhf/pipeline';
import type { Logger, NatsAuth } from '@rlhf/platform';
import type { RlhfRun } from '@rlhf/run-spec';
import type { RunSummary } from '@rlhf/workflow';
import { natsForRun } from '../local-nats.js';
import type { StageUi } from '../run-context.js';
import { runLocal } from '../run-local.js';
import { setupRun, sharedSetupOf, type Variant, variantRun } from './variant-runs.js';

export interface ExperimentOptions {
  /** The base run (variant b): it must have spec.setup and a reward-model judge. */
  base: RlhfRun;
  seeds: readonly number[];
  /** b first (parseVariants puts it there). */
  variants: readonly Variant[];
  out: string;
  workers: number;
  /** Iterations of variants a and b (at least the base run's); the goals read the base run's horizon. */
  horizon?: number;
  natsUrl?: string;
  /** Credentials and TLS for natsUrl. */
  natsAuth?: NatsAuth;
  restart?: boolean;
  ui: StageUi;
  logger: Logger;
  command: string[];
  /** Lines that say what produced the table (the command line), first in RESULTS.md. */
  header?: readonly string[];
}

export interface ExperimentResult {
  rows: VariantResult[];
  markdown: string;
  minutes: number;
}

/** The UI of one run of the experiment: its lines and bars carry the seed and variant. */
function taggedUi(ui: StageUi, tag: string): StageUi {
  return {
    start: (label) => ui.start(`${tag} ${label}`),
    finish: (label, line) => ui.finish(`${tag} ${label}`, line),
    skip: (label) => ui.skip(`${tag} ${label}`),
    say: (line) => ui.say(`${tag} ${line}`),
  };
}

const metricsOf = (m: ResultMetrics): ResultMetrics => ({
  proxyReward: m.proxyReward ?? null,
  goldReward: m.goldReward,
  winRate: m.winRate,
  kl: m.kl,
  meanLength: m.meanLength,
  grammaticalRate: m.grammaticalRate,
});

export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResult> {
  const started = Date.now();
  await mkdir(o.out, { recursive: true });
  // One NATS for every run: the variants read b's models and data from its object store.
  const nats = await natsForRun({ ...(o.natsUrl ? { url: o.natsUrl } : {}), stateDir: join(o.out, 'nats') });
  const rows: VariantResult[] = [];
  const withPm = o.variants.includes('p');
  const horizon = Math.max(o.horizon ?? o.base.spec.iterations, o.base.spec.iterations);
  try {
    for (const seed of o.seeds) {
      let setup: { summary: RunSummary; run: RlhfRun } | null = null;
      for (const v of o.variants) {
        const run: RlhfRun =
          v === 'b'
            ? setupRun(o.base, seed, withPm, horizon)
            : variantRun(
                o.base,
                seed,
                v,
                sharedSetupOf(
                  {
                    namespace: setup?.run.metadata.namespace ?? 'default',
                    name: setup?.run.metadata.name as string,
                  },
                  setup?.summary.judge.lengthPenalty ?? 0,
                  withPm,
                ),
                horizon,
              );
        const tag = `[seed ${seed} ${v}]`;
        const clock = Date.now();
        const summary = await runLocal({
          run,
          out: join(o.out, `s${seed}-${v}`),
          workers: o.workers,
          natsUrl: nats.url,
          ...(o.natsUrl && o.natsAuth ? { natsAuth: o.natsAuth } : {}),
          ...(o.restart ? { restart: true } : {}),
          ui: taggedUi(o.ui, tag),
          logger: o.logger,
          command: o.command,
        });
        const seconds = (Date.now() - clock) / 1000;
        if (v === 'b') setup = { summary, run };
        const b = setup?.summary;
        rows.push({
          seed,
          variant: v,
          rmAccuracy: b?.rewardModel?.heldOutAccuracy ?? null,
          pmAccuracy: b?.preferenceModel?.heldOutAccuracy ?? null,
          bayesRate: b?.rewardModel?.labelBayesRate ?? null,
          lambda: b?.judge.lengthPenalty ?? null,
          ...(b?.judge.lengthPenaltyFit ? { lengthFit: b.judge.lengthPenaltyFit } : {}),
          seconds,
          bestIteration: summary.bestIteration,
          initial: metricsOf(summary.initial),
          iterations: summary.iterations.map(metricsOf),
        });
        const last = summary.iterations.at(-1);
        o.ui.say(
          `${tag} done in ${seconds.toFixed(0)} s: gold ${last?.goldReward?.toFixed(3) ?? '-'} win ${last?.winRate?.toFixed(3) ?? '-'} length ${last?.meanLength?.toFixed(1) ?? '-'} grammatical ${last?.grammaticalRate?.toFixed(2) ?? '-'}`,
        );
      }
    }
  } finally {
    await nats.stop();
  }
  const minutes = (Date.now() - started) / 60000;
  const markdown = renderResults(rows, {
    seeds: o.seeds,
    variants: o.variants,
    header: o.header ?? [],
    goalIteration: o.base.spec.iterations,
  });
  await writeFile(join(o.out, 'RESULTS.md'), markdown);
  await writeFile(
    join(o.out, 'results.json'),
    `${JSON.stringify(rows, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`,
  );
  return { rows, markdown, minutes };
}
