/** The end-of-run report of a run: the chart renderer and the HTML report of its `summary.json` (@rlhf/workflow). */
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
export { type ChartSeries, type LineChartSpec, niceTicks, PALETTE, renderLineChart } from './svg-chart.js';
