/** The end-of-run report of `rlhf run`: the `summary.json` types, the chart renderer and the HTML report. */
export {
  escapeXml,
  formatCount,
  formatDuration,
  formatFixed,
  formatPercent,
  formatSignificant,
  MISSING,
} from './format.js';
export { type RenderedReport, renderReport } from './report-html.js';
export {
  bestIterationOf,
  type InitialSummary,
  type IterationSummary,
  type JudgeModelQuality,
  type PolicyMetrics,
  type RewardPoint,
  type RunSummary,
  type SamplePair,
  STAGES,
  totalSeconds,
} from './summary-types.js';
export { type ChartSeries, type LineChartSpec, niceTicks, PALETTE, renderLineChart } from './svg-chart.js';
