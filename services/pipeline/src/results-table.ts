/**
 * The reference task's results as a table like the paper's Tables 2 and 4 (docs/ARCHITECTURE.md, section 6), and
 * the reference task's goals checked on it. Pure: `rlhf experiment` (which runs every variant through
 * `rlhf run`) renders its rows with it.
 */

/** Evaluation metrics of one policy; null where the run could not measure them. */
export interface ResultMetrics {
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
  seconds: number;
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

/** The goals of the pipeline issue at the last iteration, means over seeds (only those the rows can show). */
export function experimentGoals(rows: readonly VariantResult[]): Goal[] {
  const last = (v: string): ResultMetrics[] =>
    rows.filter((r) => r.variant === v).flatMap((r) => r.iterations.slice(-1));
  const has = (v: string): boolean => last(v).length > 0;
  const gold = (v: string): number => mean(last(v).map((e) => e.goldReward));
  const win = (v: string): number => mean(last(v).map((e) => e.winRate));
  const initial = rows.filter((r) => r.variant === rows[0]?.variant).map((r) => r.initial);
  const sftGold = mean(initial.map((m) => m.goldReward));
  const sftWords = mean(initial.map((m) => m.meanLength));
  const goals: Goal[] = [];
  if (has('b')) {
    const gram = mean(last('b').map((e) => e.grammaticalRate));
    goals.push({ goal: '(b) gold >= 1.8', measured: f(gold('b')), met: gold('b') >= 1.8 });
    goals.push({ goal: '(b) win rate vs SFT >= 0.82', measured: f(win('b')), met: win('b') >= 0.82 });
    goals.push({ goal: '(b) >= 90% grammatical', measured: `${(100 * gram).toFixed(0)}%`, met: gram >= 0.9 });
    if (has('c'))
      goals.push({
        goal: '(b) beats (c) by >= 1.5 gold and >= 0.25 win rate',
        measured: `+${f(gold('b') - gold('c'))} gold, +${f(win('b') - win('c'))} win`,
        met: gold('b') - gold('c') >= 1.5 && win('b') - win('c') >= 0.25,
      });
    if (has('o'))
      goals.push({
        goal: '(b) beats (o) by >= 0.5 gold',
        measured: `+${f(gold('b') - gold('o'))}`,
        met: gold('b') - gold('o') >= 0.5,
      });
    const bRows = rows.filter((r) => r.variant === 'b');
    const iters = Math.max(...bRows.map((r) => r.iterations.length));
    const perIteration = Array.from({ length: iters }, (_, t) =>
      mean(bRows.map((r) => r.iterations[t]?.goldReward ?? null)),
    );
    const rising = [sftGold, ...perIteration].every((g, i, all) => i === 0 || g > (all[i - 1] as number));
    goals.push({
      goal: 'gold rises every iteration in (b)',
      measured: `${f(sftGold)} (SFT), ${perIteration.map((g) => f(g)).join(', ')}`,
      met: rising,
    });
  }
  if (has('a')) {
    const words = mean(last('a').map((e) => e.meanLength));
    goals.push({
      goal: '(a) ends at >= 2x SFT length with gold below SFT',
      measured: `${f(words, 1)} vs ${f(sftWords, 1)} words; gold ${f(gold('a'))} vs ${f(sftGold)}`,
      met: words >= 2 * sftWords && gold('a') < sftGold,
    });
  }
  return goals;
}

/**
 * The markdown body: setup figures, the table per variant and iteration (means over seeds), the last
 * iteration per seed, and the goals. `header` lines (what produced it, the recipe) come first.
 */
export function renderResults(
  rows: readonly VariantResult[],
  o: { seeds: readonly number[]; variants: readonly string[]; header: readonly string[] },
): string {
  const lines: string[] = ['# Results: the reference task', '', ...o.header, ''];
  const setupRows = rows.filter((r) => r.variant === rows[0]?.variant);
  const pm = mean(setupRows.map((r) => r.pmAccuracy));
  const lambdas = setupRows.map((r) => r.lambda);
  const over = [...new Set(setupRows.map((r) => r.lambdaFitOver).filter((x) => x))];
  lines.push(
    `Reward model held-out accuracy ${f(mean(setupRows.map((r) => r.rmAccuracy)), 3)}${Number.isFinite(pm) ? ` (preference model ${f(pm, 3)})` : ''} against the label model's Bayes rate ${f(mean(setupRows.map((r) => r.bayesRate)), 3)}; fitted length penalty lambda ${f(mean(lambdas), 4)} per character (per seed: ${lambdas.map((l) => f(l ?? Number.NaN, 4)).join(', ')}${over.length ? `; fitted over pi_0's ${over.join('/')} samples` : ''}).`,
    '',
    '| variant | iteration | gold | win rate vs SFT | KL | length (words) | grammatical |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  );
  const initial = setupRows.map((r) => r.initial);
  lines.push(
    `| SFT (pi_0) | 0 | ${f(mean(initial.map((m) => m.goldReward)))} | 0.50 | 0.00 | ${f(mean(initial.map((m) => m.meanLength)), 1)} | ${f(mean(initial.map((m) => m.grammaticalRate)))} |`,
  );
  const onlineIterations = Math.max(
    1,
    ...rows.filter((r) => !offlineVariants.includes(r.variant)).map((r) => r.iterations.length),
  );
  for (const v of o.variants) {
    const mine = rows.filter((r) => r.variant === v);
    const iters = Math.max(0, ...mine.map((r) => r.iterations.length));
    for (let t = 0; t < iters; t++) {
      const label = offlineVariants.includes(v) ? onlineIterations : t + 1;
      const at = mine.map((r) => r.iterations[t]).filter((m): m is ResultMetrics => m !== undefined);
      lines.push(`| ${variantNames[v] ?? v} | ${label} | ${metricCells(at)} |`);
    }
  }
  lines.push(
    '',
    'Per seed at the last iteration (gold / win rate / grammatical), and seconds per variant and seed:',
    '',
    `| variant | ${o.seeds.map((s) => `seed ${s}`).join(' | ')} |`,
    `| --- |${o.seeds.map(() => ' --- |').join('')}`,
  );
  for (const v of o.variants)
    lines.push(
      `| ${variantNames[v] ?? v} | ${o.seeds
        .map((s) => {
          const r = rows.find((x) => x.seed === s && x.variant === v);
          const e = r?.iterations.at(-1);
          return e && r
            ? `${f(e.goldReward ?? Number.NaN)} / ${f(e.winRate ?? Number.NaN)} / ${f(e.grammaticalRate ?? Number.NaN)} (${r.seconds.toFixed(0)} s)`
            : '-';
        })
        .join(' | ')} |`,
    );
  const goals = experimentGoals(rows);
  if (goals.length) {
    lines.push(
      '',
      `## Against the goals of the pipeline issue (iteration ${onlineIterations}, means over ${o.seeds.length} seeds)`,
      '',
      '| goal | measured | |',
      '| --- | --- | --- |',
    );
    for (const g of goals) lines.push(`| ${g.goal} | ${g.measured} | ${g.met ? 'met' : 'missed'} |`);
    lines.push(
      `| RM held-out accuracy next to the Bayes rate | ${f(mean(setupRows.map((r) => r.rmAccuracy)), 3)} vs ${f(mean(setupRows.map((r) => r.bayesRate)), 3)} | reported |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
