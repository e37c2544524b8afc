/**
 * The end-of-run report of `rlhf run`: one self-contained HTML page rendered from `summary.json` (inline CSS,
 * charts inlined as SVG, no scripts, nothing fetched, opens offline), plus each chart as its own SVG file.
 * Pure: no I/O; the caller writes `html` and `images` wherever it wants. Every string from the summary
 * (run names, prompts, model output) is escaped.
 */

import {
  type InitialSummary,
  type IterationSummary,
  type JudgeModelQuality,
  type RunSummary,
  STAGES,
  totalSeconds,
} from '@rlhf/workflow';
import {
  escapeXml,
  finite,
  formatCount,
  formatDuration,
  formatFixed,
  formatPercent,
  formatSignificant,
  MISSING,
} from './format.js';
import { type ChartSeries, type LineChartSpec, PALETTE, renderLineChart } from './svg-chart.js';

/** The rendered report. */
export interface RenderedReport {
  /** The whole page (UTF-8). */
  html: string;
  /** Each chart embedded in the page as a standalone SVG file: file name (e.g. "reward.svg") -> SVG text. */
  images: Record<string, string>;
}

/** A row of the metrics table: the initial policy or an iteration. */
type Row = InitialSummary | IterationSummary;

const isIteration = (r: Row): r is IterationSummary => r.iteration !== 0 && 'pairs' in r;

/** One chart of the report: a metric group. */
interface ChartDef {
  /** Its file name in `images`. */
  file: string;
  spec: Omit<LineChartSpec, 'x' | 'series' | 'best'>;
  series: { name: string; value: (r: Row) => number | null }[];
}

const iterationOnly =
  (pick: (r: IterationSummary) => number | null) =>
  (r: Row): number | null =>
    isIteration(r) ? pick(r) : null;

/** The charts, one per metric group, in page order. */
const CHARTS: readonly ChartDef[] = [
  {
    file: 'reward.svg',
    spec: { title: 'Validation reward', yLabel: 'mean reward' },
    series: [
      { name: 'proxy reward (judge)', value: (r) => r.proxyReward },
      { name: 'gold reward', value: (r) => r.goldReward },
    ],
  },
  {
    file: 'win-rate.svg',
    spec: {
      title: 'Win rate against the initial policy',
      yLabel: 'win rate (gold)',
      format: 'percent',
      yInclude: [0, 1],
      reference: { y: 0.5, label: 'parity' },
    },
    series: [{ name: 'win rate vs initial', value: (r) => r.winRate }],
  },
  {
    file: 'kl.svg',
    spec: { title: 'KL divergence from the initial policy', yLabel: 'KL (nats)', yInclude: [0] },
    series: [{ name: 'KL(π_t ‖ π_0)', value: (r) => r.kl }],
  },
  {
    file: 'mean-length.svg',
    spec: { title: 'Mean response length', yLabel: 'words', yInclude: [0] },
    series: [{ name: 'mean length', value: (r) => r.meanLength }],
  },
  {
    file: 'grammatical-rate.svg',
    spec: { title: 'Grammatical responses', yLabel: 'share of samples', format: 'percent', yInclude: [1] },
    series: [{ name: 'grammatical', value: (r) => r.grammaticalRate }],
  },
  {
    file: 'dpo.svg',
    spec: { title: 'DPO training: final loss and reward accuracy', yLabel: 'loss / accuracy', yInclude: [0] },
    series: [
      { name: 'DPO loss', value: iterationOnly((r) => r.dpoLoss) },
      { name: 'DPO accuracy', value: iterationOnly((r) => r.dpoAccuracy) },
    ],
  },
];

/** Stage keys of the run in display order: the known stages first, then any others alphabetically. */
function stageKeys(iterations: readonly IterationSummary[]): string[] {
  const seen = new Set<string>();
  for (const it of iterations) for (const k of Object.keys(it.durations)) seen.add(k);
  const known: string[] = STAGES.filter((s) => seen.has(s));
  const extra = [...seen].filter((k) => !(STAGES as readonly string[]).includes(k)).sort();
  return [...known, ...extra];
}

const e = escapeXml;

/** A numeric table cell. */
const num = (text: string, title?: string): string =>
  `<td class="num"${title ? ` title="${e(title)}"` : ''}>${e(text)}</td>`;

const reward = (v: number | null): string => formatFixed(v, 3);

/** "83.0% held-out accuracy (label Bayes rate 87.0%)" for a learned judge. */
function judgeQuality(q: JudgeModelQuality): string {
  const acc = formatPercent(q.heldOutAccuracy);
  const bayes = formatPercent(q.labelBayesRate);
  const a = finite(q.heldOutAccuracy);
  const b = finite(q.labelBayesRate);
  let gap = '';
  if (a !== null && b !== null) {
    const points = formatFixed(Math.abs(b - a) * 100, 1);
    gap = ` <span class="muted">(${e(points)} pp ${a <= b ? 'below' : 'above'} it)</span>`;
  }
  return `<span class="big">${e(acc)}</span> held-out accuracy<br/><span class="muted">label Bayes rate ${e(bayes)}</span>${gap}`;
}

/** Time between two ISO timestamps, or "–". */
function wallTime(startedAt: string, finishedAt: string): string {
  const a = Date.parse(startedAt);
  const b = Date.parse(finishedAt);
  return Number.isFinite(a) && Number.isFinite(b) && b >= a ? formatDuration((b - a) / 1000) : MISSING;
}

/** "2024-05-01T12:00:00.000Z" -> "2024-05-01 12:00:00 UTC"; anything unparsable is shown as given. */
function timestamp(iso: string): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso || MISSING;
  return `${new Date(t).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** Which iteration the gold would have picked, when the run measured gold and a proxy. */
function goldPickNote(s: RunSummary): string {
  const g = goldPick(s);
  if (g === null || s.bestIteration === null || s.judge.type === 'gold') return '';
  return g === s.bestIteration
    ? ' · the gold picks the same'
    : ` · the gold would pick ${g === 0 ? 'the initial policy' : `iteration ${e(String(g))}`}`;
}

function card(label: string, bodyHtml: string): string {
  return `<div class="card"><div class="label">${e(label)}</div><div class="value">${bodyHtml}</div></div>`;
}

function headerHtml(s: RunSummary): string {
  const j = s.judge;
  const lambda = finite(j.lengthPenalty);
  let penalty =
    lambda === null || lambda === 0 ? 'none' : `λ = ${formatSignificant(lambda, 3)} per character`;
  let fit = '';
  if (j.lengthPenaltyFit) {
    const r2 = finite(j.lengthPenaltyFit.r2 ?? null);
    const lf = j.lengthPenaltyFit;
    const gold = finite(lf.goldCoefficient ?? null);
    const len = finite(lf.lengthCoefficient ?? null);
    const terms =
      gold === null || len === null
        ? ''
        : `; RM score ≈ ${formatSignificant(finite(lf.intercept ?? null) ?? 0, 3)} + ${formatSignificant(gold, 3)}·gold ${len < 0 ? '−' : '+'} ${formatSignificant(Math.abs(len), 3)}·chars${lf.samples ? ` over ${lf.samples} samples` : ''}`;
    fit = `fitted (auto): λ = ${formatSignificant(lf.lambda, 3)}${r2 === null ? '' : `, R² = ${formatFixed(r2, 3)}`}${terms}`;
    if (lambda === null) penalty = 'none';
  }
  const cards = [
    card('Judge', `<span class="big">${e(j.type)}</span>`),
    card(
      'Length penalty',
      `<span class="big">${e(penalty)}</span>${fit ? `<br/><span class="muted">${e(fit)}</span>` : ''}`,
    ),
  ];
  if (s.rewardModel) cards.push(card('Reward model (BT)', judgeQuality(s.rewardModel)));
  if (s.preferenceModel) cards.push(card('Preference model', judgeQuality(s.preferenceModel)));
  const bestRow = [s.initial, ...s.iterations].find((r) => r.iteration === s.bestIteration);
  const bestText =
    s.bestIteration === null
      ? `<span class="big">${MISSING}</span><br/><span class="muted">no validation reward measured</span>`
      : `<span class="big">${s.bestIteration === 0 ? 'initial policy' : `iteration ${e(String(s.bestIteration))}`}</span>` +
        (bestRow
          ? `<br/><span class="muted">proxy ${e(reward(bestRow.proxyReward))} · gold ${e(reward(bestRow.goldReward))}${goldPickNote(s)}</span>`
          : '');
  cards.push(card('Best by validation reward', bestText));

  const meta = [
    `namespace <strong>${e(s.run.namespace)}</strong>`,
    `seed <strong>${e(String(s.run.seed))}</strong>`,
    `${e(String(s.iterations.length))} iteration${s.iterations.length === 1 ? '' : 's'}`,
    `started ${e(timestamp(s.run.startedAt))}`,
    `wall time ${e(wallTime(s.run.startedAt, s.run.finishedAt))}`,
  ];
  return [
    '<header>',
    '<p class="eyebrow">RLHF run report · online iterative DPO</p>',
    `<h1>${e(s.run.name)}</h1>`,
    `<p class="meta">${meta.join(' <span class="sep">·</span> ')}</p>`,
    `<p class="meta">best policy <code>${e(s.bestPolicy || MISSING)}</code></p>`,
    '</header>',
    `<section class="cards" aria-label="Run setup">${cards.join('')}</section>`,
  ].join('\n');
}

function metricsTable(s: RunSummary): string {
  const rows: Row[] = [s.initial, ...s.iterations];
  const head = [
    ['Iteration', ''],
    ['Proxy reward', 'mean judge score on held-out prompts (the validation reward)'],
    ['Gold reward', 'mean gold reward on held-out prompts'],
    [
      'Win rate vs initial',
      'share of held-out prompts where the policy beats the initial policy under the gold reward, ties half',
    ],
    ['KL', 'KL(π_t ‖ π_0) in nats, estimated from samples'],
    ['Mean length', 'mean response length in words'],
    ['Grammatical', 'share of grammatical samples'],
    ['Pairs', 'preference pairs trained on'],
    ['DPO loss', 'final DPO training loss'],
    ['DPO accuracy', 'final share of pairs whose chosen response has the higher implicit reward'],
    ['Time', 'wall-clock time of the iteration, all stages'],
  ];
  const th = head
    .map(
      ([h, title], i) =>
        `<th scope="col"${i > 0 ? ' class="num"' : ''}${title ? ` title="${e(title)}"` : ''}>${e(h ?? '')}</th>`,
    )
    .join('');
  const body = rows.map((r) => {
    const best = r.iteration === s.bestIteration;
    const it = isIteration(r) ? r : null;
    const label = r.iteration === 0 ? '0 · initial' : String(r.iteration);
    const badge = best ? ' <span class="badge">best</span>' : '';
    const time = it ? totalSeconds(it.durations) : null;
    const breakdown = it
      ? Object.entries(it.durations)
          .map(([k, v]) => `${k} ${formatDuration(v)}`)
          .join(', ')
      : '';
    return [
      `<tr${best ? ' class="best"' : ''}>`,
      `<th scope="row" title="${e(r.policy)}">${e(label)}${badge}</th>`,
      num(reward(r.proxyReward)),
      num(reward(r.goldReward)),
      num(formatPercent(r.winRate)),
      num(formatFixed(r.kl, 2)),
      num(formatFixed(r.meanLength, 1)),
      num(formatPercent(r.grammaticalRate)),
      num(it ? formatCount(it.pairs) : MISSING),
      num(it ? formatFixed(it.dpoLoss, 3) : MISSING),
      num(it ? formatPercent(it.dpoAccuracy) : MISSING),
      num(it ? formatDuration(time) : MISSING, breakdown || undefined),
      '</tr>',
    ].join('');
  });
  return [
    '<section aria-labelledby="metrics-h">',
    '<h2 id="metrics-h">Metrics per iteration</h2>',
    '<p class="note">Evaluated on held-out prompts. The best iteration (highest validation reward) is highlighted.</p>',
    '<div class="scroll"><table class="metrics">',
    `<thead><tr>${th}</tr></thead>`,
    `<tbody>\n${body.join('\n')}\n</tbody>`,
    '</table></div>',
    '</section>',
  ].join('\n');
}

function stageTable(s: RunSummary): string {
  const keys = stageKeys(s.iterations);
  if (s.iterations.length === 0 || keys.length === 0) return '';
  const th = ['Iteration', ...keys, 'total']
    .map((h, i) => `<th scope="col"${i > 0 ? ' class="num"' : ''}>${e(h)}</th>`)
    .join('');
  const body = s.iterations.map(
    (it) =>
      `<tr><th scope="row">${e(String(it.iteration))}</th>${keys.map((k) => num(formatDuration(it.durations[k] ?? null))).join('')}${num(formatDuration(totalSeconds(it.durations)))}</tr>`,
  );
  return [
    '<section aria-labelledby="time-h">',
    '<h2 id="time-h">Time per stage</h2>',
    '<div class="scroll"><table class="stages">',
    `<thead><tr>${th}</tr></thead>`,
    `<tbody>\n${body.join('\n')}\n</tbody>`,
    '</table></div>',
    '</section>',
  ].join('\n');
}

/** The charts with at least one measured value; series with no value at all are left out. */
function charts(s: RunSummary): { file: string; svg: string }[] {
  const rows: Row[] = [s.initial, ...s.iterations];
  const x = rows.map((r) => r.iteration);
  const out: { file: string; svg: string }[] = [];
  for (const def of CHARTS) {
    const series: ChartSeries[] = [];
    def.series.forEach((d, i) => {
      const values = rows.map((r) => finite(d.value(r)));
      // Keep each series' palette slot even when an earlier one is dropped, so colours mean the same everywhere.
      const dash = i === 0 ? '' : '6 4';
      if (values.some((v) => v !== null))
        series.push({ name: d.name, values, dash, color: PALETTE[i % PALETTE.length] ?? '#0072B2' });
    });
    if (series.length === 0) continue;
    out.push({
      file: def.file,
      svg: renderLineChart({
        ...def.spec,
        x,
        series,
        best: s.bestIteration,
        bestLabel: s.bestIteration === 0 ? 'best (initial)' : 'best',
      }),
    });
  }
  const over = overOptimisationChart(rows, s.bestIteration);
  if (over) out.push(over);
  return out;
}

/**
 * Proxy and gold reward gains over pi_0 against KL(pi_t || pi_0), a point per iteration (the shape of Gao et al. 2023: the proxy
 * keeps rising with KL while the gold can peak and fall). Drawn when at least two policies have a KL.
 */
function overOptimisationChart(
  rows: readonly Row[],
  best: number | null,
): { file: string; svg: string } | null {
  const kl = rows.map((r) => (r.iteration === 0 ? 0 : finite(r.kl)));
  if (kl.filter((k) => k !== null).length < 2) return null;
  const series: ChartSeries[] = [];
  // Gains over pi_0, so the two rewards share a zero whatever their offsets (the RM's score has none fixed).
  const defs = [
    { name: 'proxy reward gain (judge)', value: (r: Row) => r.proxyReward },
    { name: 'gold reward gain', value: (r: Row) => r.goldReward },
  ];
  defs.forEach((d, i) => {
    const start = finite(d.value(rows[0] as Row));
    const values = rows.map((r) => {
      const v = finite(d.value(r));
      return v === null || start === null ? null : v - start;
    });
    if (values.some((v) => v !== null))
      series.push({ name: d.name, values, dash: i === 0 ? '' : '6 4', color: PALETTE[i] ?? '#0072B2' });
  });
  if (series.length === 0) return null;
  return {
    file: 'over-optimisation.svg',
    svg: renderLineChart({
      title: 'Reward gain over the initial policy against KL',
      yLabel: 'mean reward minus π_0’s',
      xLabel: 'KL(π_t ‖ π_0), nats; labels are iterations',
      xAxis: 'value',
      x: kl.map((k) => k ?? Number.NaN),
      pointLabels: rows.map((r) => String(r.iteration)),
      series,
      best,
      bestLabel: best === 0 ? 'best (initial)' : 'best',
    }),
  };
}

/** The iteration (0 = pi_0) the gold reward would have picked: highest gold, ties to the earlier one. */
export function goldPick(s: RunSummary): number | null {
  let best: number | null = null;
  let value = Number.NEGATIVE_INFINITY;
  for (const r of [s.initial, ...s.iterations]) {
    const g = finite(r.goldReward);
    if (g !== null && g > value) {
      best = r.iteration;
      value = g;
    }
  }
  return best;
}

function chartsHtml(list: readonly { file: string; svg: string }[]): string {
  if (list.length === 0) return '';
  return [
    '<section aria-labelledby="charts-h">',
    '<h2 id="charts-h">Charts</h2>',
    '<p class="note">Hover a point for its value. The dashed vertical line marks the best iteration.</p>',
    '<div class="charts">',
    ...list.map((c) => `<figure class="chart" data-image="${e(c.file)}">\n${c.svg}\n</figure>`),
    '</div>',
    '</section>',
  ].join('\n');
}

function samplesHtml(s: RunSummary): string {
  const head = '<h2 id="samples-h">Sample pairs</h2>';
  if (s.samples.length === 0)
    return `<section aria-labelledby="samples-h">\n${head}\n<p class="note">No sample pairs were recorded.</p>\n</section>`;
  const rows = s.samples.map((p) =>
    [
      '<tr>',
      `<td class="num">${e(String(p.iteration))}</td>`,
      `<td><div class="text">${e(p.prompt)}</div></td>`,
      `<td><div class="text">${e(p.chosen)}</div><div class="score chosen">score ${e(formatFixed(p.chosenScore, 3))}</div></td>`,
      `<td><div class="text">${e(p.rejected)}</div><div class="score rejected">score ${e(formatFixed(p.rejectedScore, 3))}</div></td>`,
      '</tr>',
    ].join(''),
  );
  return [
    '<section aria-labelledby="samples-h">',
    head,
    '<p class="note">Preference pairs built by the judge: the chosen (best) and rejected (worst) response for a training prompt, with their judge scores.</p>',
    '<div class="scroll"><table class="samples">',
    '<thead><tr><th scope="col" class="num">Iter.</th><th scope="col">Prompt</th><th scope="col">Chosen</th><th scope="col">Rejected</th></tr></thead>',
    `<tbody>\n${rows.join('\n')}\n</tbody>`,
    '</table></div>',
    '</section>',
  ].join('\n');
}

const CSS = `
:root { color-scheme: light; --ink: #1f2933; --muted: #52606d; --line: #e4e7eb; --soft: #f5f7fa; --accent: #0072b2; --best: #fff7e0; --best-edge: #e69f00; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--soft); color: var(--ink); font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 32px 28px 48px; }
header { margin-bottom: 20px; }
.eyebrow { margin: 0; color: var(--accent); font-size: 12px; font-weight: 600; letter-spacing: .06em; text-transform: uppercase; }
h1 { margin: 4px 0 6px; font-size: 28px; line-height: 1.2; word-break: break-word; }
h2 { margin: 0 0 6px; font-size: 18px; }
.meta { margin: 2px 0; color: var(--muted); }
.meta strong { color: var(--ink); font-weight: 600; }
.sep { margin: 0 4px; color: #9aa5b1; }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: 1px 5px; word-break: break-all; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; margin: 0 0 18px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; background: none; border: 0; padding: 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; margin-bottom: 4px; }
.big { font-size: 17px; font-weight: 600; }
.muted { color: var(--muted); font-size: 13px; }
.note { margin: 0 0 12px; color: var(--muted); font-size: 13px; }
.scroll { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { color: var(--muted); font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .03em; border-bottom: 2px solid var(--line); white-space: nowrap; }
tbody th { font-weight: 600; white-space: nowrap; }
.num { text-align: right; white-space: nowrap; }
table.metrics tbody tr:nth-child(even), table.stages tbody tr:nth-child(even) { background: #fafbfc; }
table.metrics tr.best, table.metrics tr.best:nth-child(even) { background: var(--best); }
table.metrics tr.best th { box-shadow: inset 4px 0 0 var(--best-edge); }
.badge { display: inline-block; margin-left: 6px; padding: 0 7px; border-radius: 9px; background: var(--best-edge); color: #fff; font-size: 11px; font-weight: 700; letter-spacing: .03em; text-transform: uppercase; vertical-align: 1px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 14px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
figure.chart svg { display: block; width: 100%; height: auto; }
table.samples td { width: 32%; }
table.samples td.num { width: 4%; }
.text { white-space: pre-wrap; word-break: break-word; font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.score { margin-top: 4px; font-size: 12px; font-weight: 600; font-variant-numeric: tabular-nums; }
.score.chosen { color: #007a5a; }
.score.rejected { color: #b34700; }
footer { color: var(--muted); font-size: 12px; text-align: center; }
@media print { body { background: #fff; } section, .card { break-inside: avoid; } }
`;

/** Renders `summary.json` as the report page and its chart files. Deterministic: same summary, same bytes. */
export function renderReport(summary: RunSummary): RenderedReport {
  const list = charts(summary);
  const images: Record<string, string> = {};
  for (const c of list) images[c.file] = `${c.svg}\n`;
  const html = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8"/>',
    '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
    `<title>${e(`RLHF run ${summary.run.name} — report`)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<main>',
    headerHtml(summary),
    metricsTable(summary),
    chartsHtml(list),
    samplesHtml(summary),
    stageTable(summary),
    `<footer>Rendered from summary.json of run ${e(summary.run.namespace)}/${e(summary.run.name)}, finished ${e(timestamp(summary.run.finishedAt))}.</footer>`,
    '</main>',
    '</body>',
    '</html>',
    '',
  ]
    .filter((part) => part !== '')
    .join('\n');
  return { html: `${html}\n`, images };
}
