/**
 * The reference task's results as a table like the paper's Tables 2 and 4 (docs/ARCHITECTURE.md, section 6), and
 * the reference task's goals checked on it. Pure: `rlhf experiment` (which runs every variant through
 * `rlhf run`) renders its rows with it.
 */

/** Evaluation metrics of one policy; null where the run could not measure them. */
export interface ResultMetrics {
  /** The judge's validation reward (penalized RM score, PM score; the gold for the gold judge). */
  proxyReward?: number | null;
  goldReward: number | null;
  winRate: number | null;
  kl: number | null;
  meanLength: number | null;
  grammaticalRate: number | null;
}

/** One variant of one seed. Offline variants have one iteration (tabled as the last online one). */
export interface VariantResult {
  seed: number;
  variant: string;
  rmAccuracy: number | null;
  pmAccuracy: number | null;
  bayesRate: number | null;
  lambda: number | null;
  /** Which of pi_0's samples the length fit used (grammatical, or all). */
  lambdaFitOver?: string;
  /** The length fit's regression of the RM score on gold and length (characters), when lambda was fitted. */
  lengthFit?: { goldCoefficient?: number; lengthCoefficient?: number; r2?: number };
  seconds: number;
  /** The iteration the run picked by validation (proxy) reward, 0 = pi_0. */
  bestIteration?: number | null;
  initial: ResultMetrics;
  iterations: ResultMetrics[];
}

export const variantNames: Record<string, string> = {
  a: '(a) online, RM, no penalty',
  b: '(b) online, RM + length penalty',
  c: '(c) offline DPO, annotator pairs',
  o: '(o) offline, best-vs-worst of SFT samples',
  g: '(g) online, gold judge',
  p: '(p) online, PM tournament, no penalty',
};

export const offlineVariants: readonly string[] = ['c', 'o'];

export interface Goal {
  goal: string;
  measured: string;
  met: boolean;
}

const mean = (xs: readonly (number | null)[]): number => {
  const ok = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : Number.NaN;
};
const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

function metricCells(ms: readonly ResultMetrics[]): string {
  return [
    f(mean(ms.map((m) => m.goldReward))),
    f(mean(ms.map((m) => m.winRate))),
    f(mean(ms.map((m) => m.kl))),
    f(mean(ms.map((m) => m.meanLength)), 1),
    f(mean(ms.map((m) => m.grammaticalRate))),
  ].join(' | ');
}

/**
 * The goals of the reference task (docs/RESULTS.md) at `goalIteration` (the base run's horizon, 3), means over seeds.
 * Online rows may run longer (a and b at 6 iterations for the over-optimisation picture); the goals read their
 * goal iteration, offline variants their one round. Only the goals the rows can show are listed.
 */
export function experimentGoals(rows: readonly VariantResult[], goalIteration = 3): Goal[] {
  const at = (v: string): ResultMetrics[] =>
    rows
      .filter((r) => r.variant === v)
      .flatMap((r) => {
        const m = offlineVariants.includes(v) ? r.iterations[0] : r.iterations[goalIteration - 1];
        return m ? [m] : [];
      });
  const has = (v: string): boolean => at(v).length > 0;
  const metric = (v: string, k: keyof ResultMetrics): number => mean(at(v).map((e) => e[k] ?? null));
  const initial = rows.filter((r) => r.variant === rows[0]?.variant).map((r) => r.initial);
  const sftGold = mean(initial.map((m) => m.goldReward));
  const sftWords = mean(initial.map((m) => m.meanLength));
  const pct = (x: number): string => `${(100 * x).toFixed(0)}%`;
  const goals: Goal[] = [];
  if (has('b')) {
    const words = metric('b', 'meanLength');
    goals.push({
      goal: "(b) mean length within 0.7x-1.5x of SFT's",
      measured: `${f(words, 1)} vs ${f(sftWords, 1)} words (${f(words / sftWords)}x)`,
      met: words >= 0.7 * sftWords && words <= 1.5 * sftWords,
    });
    const gram = metric('b', 'grammaticalRate');
    goals.push({ goal: '(b) >= 95% grammatical', measured: pct(gram), met: gram >= 0.95 });
    const bRows = rows.filter((r) => r.variant === 'b');
    const perIteration = Array.from({ length: goalIteration }, (_, t) =>
      mean(bRows.map((r) => r.iterations[t]?.goldReward ?? null)),
    );
    const rising = [sftGold, ...perIteration].every(
      (g, i, all) => i === 0 || (Number.isFinite(g) && g > (all[i - 1] as number)),
    );
    goals.push({
      goal: '(b) gold rises every iteration',
      measured: `${f(sftGold)} (SFT), ${perIteration.map((g) => f(g)).join(', ')}`,
      met: rising,
    });
    if (has('g')) {
      const share = (metric('b', 'goldReward') - sftGold) / (metric('g', 'goldReward') - sftGold);
      goals.push({
        goal: "(b) gold gain over SFT >= 70% of (g)'s",
        measured: `${pct(share)} (${f(metric('b', 'goldReward') - sftGold)} of ${f(metric('g', 'goldReward') - sftGold)})`,
        met: share >= 0.7,
      });
    }
    const win = metric('b', 'winRate');
    goals.push({ goal: '(b) win rate vs SFT >= 0.80', measured: f(win), met: win >= 0.8 });
    for (const [v, margin] of [
      ['c', 0.2],
      ['o', 0.1],
    ] as const)
      if (has(v)) {
        const d = win - metric(v, 'winRate');
        goals.push({
          goal: `(b) win rate above (${v})'s by >= ${f(margin)}`,
          measured: `${d >= 0 ? '+' : ''}${f(d)} (${f(win)} vs ${f(metric(v, 'winRate'))})`,
          met: d >= margin,
        });
      }
  }
  if (has('a') && has('b')) {
    const words = metric('a', 'meanLength');
    const gold = metric('a', 'goldReward');
    const gram = metric('a', 'grammaticalRate');
    goals.push({
      goal: "(a) length >= 2x SFT's, gold and grammatical below (b)'s",
      measured: `${f(words, 1)} vs ${f(sftWords, 1)} words; gold ${f(gold)} vs ${f(metric('b', 'goldReward'))}; grammatical ${pct(gram)} vs ${pct(metric('b', 'grammaticalRate'))}`,
      met: words >= 2 * sftWords && gold < metric('b', 'goldReward') && gram < metric('b', 'grammaticalRate'),
    });
  }
  return goals;
}

/** The iteration (0 = pi_0) with the highest value of `key`; ties to the earlier one; null when none. */
export function bestIterationBy(r: VariantResult, key: 'proxyReward' | 'goldReward'): number | null {
  let best: number | null = null;
  let bestValue = Number.NEGATIVE_INFINITY;
  [r.initial, ...r.iterations].forEach((m, t) => {
    const v = m[key];
    if (typeof v === 'number' && Number.isFinite(v) && v > bestValue) {
      best = t;
      bestValue = v;
    }
  });
  return best;
}

/**
 * Gold and proxy reward against KL per iteration for the variants that ran past the goal iteration (the
 * over-optimisation picture of Gao et al. 2023), and per seed which iteration the validation proxy picked
 * and which the gold would have.
 */
function overOptimisationLines(
  rows: readonly VariantResult[],
  seeds: readonly number[],
  variants: readonly string[],
  goalIteration: number,
): string[] {
  const long = variants.filter(
    (v) =>
      !offlineVariants.includes(v) &&
      rows.some((r) => r.variant === v && r.iterations.length > goalIteration),
  );
  if (long.length === 0) return [];
  const lines = [
    '',
    `## Past iteration ${goalIteration}: proxy and gold reward against KL`,
    '',
    'Means over seeds per iteration (0 = pi_0). The proxy is what the run optimizes and selects on (validation',
    "reward: the penalized RM score for (b), the raw one for (a)); the gold is the task's reward.",
    '',
    '| variant | iteration | KL | proxy | gold | win rate vs SFT | length (words) | grammatical |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const v of long) {
    const mine = rows.filter((r) => r.variant === v);
    const iters = Math.max(...mine.map((r) => r.iterations.length));
    for (let t = 0; t <= iters; t++) {
      const ms = mine
        .map((r) => (t === 0 ? r.initial : r.iterations[t - 1]))
        .filter((m): m is ResultMetrics => m !== undefined);
      lines.push(
        `| ${variantNames[v] ?? v} | ${t} | ${f(t === 0 ? 0 : mean(ms.map((m) => m.kl)))} | ${f(mean(ms.map((m) => m.proxyReward ?? null)))} | ${f(mean(ms.map((m) => m.goldReward)))} | ${f(t === 0 ? 0.5 : mean(ms.map((m) => m.winRate)))} | ${f(mean(ms.map((m) => m.meanLength)), 1)} | ${f(mean(ms.map((m) => m.grammaticalRate)))} |`,
      );
    }
  }
  lines.push(
    '',
    'The iteration each run selected by validation proxy, and the one the gold would have picked:',
    '',
    `| variant | ${seeds.map((s) => `seed ${s}: proxy / gold`).join(' | ')} |`,
    `| --- |${seeds.map(() => ' --- |').join('')}`,
  );
  for (const v of long)
    lines.push(
      `| ${variantNames[v] ?? v} | ${seeds
        .map((s) => {
          const r = rows.find((x) => x.seed === s && x.variant === v);
          if (!r) return '-';
          const proxy = r.bestIteration ?? bestIterationBy(r, 'proxyReward');
          return `${proxy ?? '-'} / ${bestIterationBy(r, 'goldReward') ?? '-'}`;
        })
        .join(' | ')} |`,
    );
  return lines;
}

/**
 * The markdown body: setup figures, the table per variant and iteration up to the goal iteration (means over
 * seeds), the goal iteration per seed, the goals, and for variants that ran longer the proxy and gold against
 * KL. `header` lines (what produced it, the recipe) come first.
 */
export function renderResults(
  rows: readonly VariantResult[],
  o: {
    seeds: readonly number[];
    variants: readonly string[];
    header: readonly string[];
    /** The iteration the goals and the main table are read at (the base run's horizon). */
    goalIteration?: number;
  },
): string {
  const lines: string[] = ['# Results: the reference task', '', ...o.header, ''];
  const setupRows = rows.filter((r) => r.variant === rows[0]?.variant);
  const pm = mean(setupRows.map((r) => r.pmAccuracy));
  const lambdas = setupRows.map((r) => r.lambda);
  const over = [...new Set(setupRows.map((r) => r.lambdaFitOver).filter((x) => x))];
  lines.push(
    `Reward model held-out accuracy ${f(mean(setupRows.map((r) => r.rmAccuracy)), 3)}${Number.isFinite(pm) ? ` (preference model ${f(pm, 3)})` : ''} against the label model's Bayes rate ${f(mean(setupRows.map((r) => r.bayesRate)), 3)}; fitted length penalty lambda ${f(mean(lambdas), 4)} per character (per seed: ${lambdas.map((l) => f(l ?? Number.NaN, 4)).join(', ')}${over.length ? `; fitted over pi_0's ${over.join('/')} samples` : ''}).`,
  );
  const fits = setupRows
    .map((r) => r.lengthFit)
    .filter((x): x is NonNullable<VariantResult['lengthFit']> => typeof x?.goldCoefficient === 'number');
  if (fits.length)
    lines.push(
      '',
      `The fit regresses the RM score on gold and length together over pi_0's samples (RM score ~ a + b gold + c chars; lambda = max(c, 0)): per seed b = ${fits.map((x) => f(x.goldCoefficient ?? Number.NaN, 3)).join(', ')}; c = ${fits.map((x) => f(x.lengthCoefficient ?? Number.NaN, 4)).join(', ')}; R^2 = ${fits.map((x) => f(x.r2 ?? Number.NaN, 3)).join(', ')}.`,
    );
  lines.push(
    '',
    '| variant | iteration | gold | win rate vs SFT | KL | length (words) | grammatical |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  );
  const initial = setupRows.map((r) => r.initial);
  lines.push(
    `| SFT (pi_0) | 0 | ${f(mean(initial.map((m) => m.goldReward)))} | 0.50 | 0.00 | ${f(mean(initial.map((m) => m.meanLength)), 1)} | ${f(mean(initial.map((m) => m.grammaticalRate)))} |`,
  );
  const goalIteration =
    o.goalIteration ??
    Math.max(1, ...rows.filter((r) => !offlineVariants.includes(r.variant)).map((r) => r.iterations.length));
  for (const v of o.variants) {
    const mine = rows.filter((r) => r.variant === v);
    const iters = Math.min(goalIteration, Math.max(0, ...mine.map((r) => r.iterations.length)));
    for (let t = 0; t < iters; t++) {
      const label = offlineVariants.includes(v) ? goalIteration : t + 1;
      const at = mine.map((r) => r.iterations[t]).filter((m): m is ResultMetrics => m !== undefined);
      lines.push(`| ${variantNames[v] ?? v} | ${label} | ${metricCells(at)} |`);
    }
  }
  lines.push(
    '',
    `Per seed at iteration ${goalIteration} (gold / win rate / grammatical), and seconds per variant and seed (the whole run):`,
    '',
    `| variant | ${o.seeds.map((s) => `seed ${s}`).join(' | ')} |`,
    `| --- |${o.seeds.map(() => ' --- |').join('')}`,
  );
  for (const v of o.variants)
    lines.push(
      `| ${variantNames[v] ?? v} | ${o.seeds
        .map((s) => {
          const r = rows.find((x) => x.seed === s && x.variant === v);
          const e = offlineVariants.includes(v) ? r?.iterations[0] : r?.iterations[goalIteration - 1];
          return e && r
            ? `${f(e.goldReward ?? Number.NaN)} / ${f(e.winRate ?? Number.NaN)} / ${f(e.grammaticalRate ?? Number.NaN)} (${r.seconds.toFixed(0)} s)`
            : '-';
        })
        .join(' | ')} |`,
    );
  const goals = experimentGoals(rows, goalIteration);
  if (goals.length) {
    lines.push(
      '',
      `## Against the goals (iteration ${goalIteration}, means over ${o.seeds.length} seeds)`,
      '',
      '| goal | measured | |',
      '| --- | --- | --- |',
    );
    for (const g of goals) lines.push(`| ${g.goal} | ${g.measured} | ${g.met ? 'met' : 'missed'} |`);
    if (o.variants.includes('p')) {
      const p = (k: keyof ResultMetrics): number =>
        mean(rows.filter((r) => r.variant === 'p').map((r) => r.iterations[goalIteration - 1]?.[k] ?? null));
      lines.push(
        `| (p) PM judge beside (b) | gold ${f(p('goldReward'))}, win ${f(p('winRate'))}, ${f(p('meanLength'), 1)} words, ${f(100 * p('grammaticalRate'), 0)}% grammatical | reported |`,
      );
    }
    lines.push(
      `| RM and PM held-out accuracy next to the Bayes rate | RM ${f(mean(setupRows.map((r) => r.rmAccuracy)), 3)}${Number.isFinite(pm) ? `, PM ${f(pm, 3)}` : ''} vs ${f(mean(setupRows.map((r) => r.bayesRate)), 3)} | reported |`,
    );
  }
  lines.push(...overOptimisationLines(rows, o.seeds, o.variants, goalIteration));
  return `${lines.join('\n')}\n`;
}
