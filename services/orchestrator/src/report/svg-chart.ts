/**
 * A small, dependency-free line chart rendered to an SVG string: x = iteration (0 = the initial policy), a y
 * axis with "nice" ticks, one or more series (null points skipped: the line breaks there), each point's value
 * in a hover tooltip (`<title>`), an optional horizontal reference line and the best iteration marked by a
 * dashed vertical line. The output is deterministic (no ids, no dates, coordinates rounded) and
 * self-contained: the same string is a valid standalone `.svg` file and can be inlined into HTML.
 */
import { escapeXml, finite, formatFixed, formatPercent, formatSignificant } from './format.js';

/** One line of a chart. */
export interface ChartSeries {
  /** Legend and tooltip name. */
  name: string;
  /** One value per entry of `LineChartSpec.x`; null (or non-finite) values are not drawn. */
  values: readonly (number | null)[];
  /** Stroke colour; defaults to the palette entry of the series' index. */
  color?: string;
  /** SVG `stroke-dasharray` of the line; defaults to solid for the first series, dashed patterns after. */
  dash?: string;
}

/** What to draw. */
export interface LineChartSpec {
  /** The chart's heading, also its accessible name. */
  title: string;
  /**
   * Iteration numbers along the x axis, ascending (0 = the initial policy); with `xAxis: 'value'`, one measured
   * value per point (e.g. KL), in any order, the line joining the points in the given order.
   */
  x: readonly number[];
  /** How x is drawn: 'iteration' (default: a tick per iteration) or 'value' (a measured quantity, nice ticks). */
  xAxis?: 'iteration' | 'value';
  /**
   * With `xAxis: 'value'`, each point's name (e.g. "iteration 3") in tooltips, and written beside the first
   * series' points so the reader sees which iteration sits where.
   */
  pointLabels?: readonly string[];
  /** The lines. */
  series: readonly ChartSeries[];
  /** Y axis title, e.g. "reward" or "words". */
  yLabel?: string;
  /** X axis title; defaults to "iteration (0 = initial policy)". */
  xLabel?: string;
  /** How values and y ticks are written: plain numbers, or rates in [0, 1] shown as percentages. */
  format?: 'number' | 'percent';
  /** Values the y range must include even if no point reaches them (e.g. 0 and 1 for rates). */
  yInclude?: readonly number[];
  /** A labelled horizontal reference line, e.g. a 50% win rate. */
  reference?: { y: number; label: string };
  /** The iteration to mark as best (on a value axis: the point whose label is its number); null or absent for none. */
  best?: number | null;
  /** Label of the best marker; defaults to "best". */
  bestLabel?: string;
  /** Pixel size of the drawing (it scales: the SVG has a viewBox). Defaults 560 x 300. */
  width?: number;
  height?: number;
}

/** Colour-blind-safe palette (Okabe-Ito), in series order. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9'] as const;
const DASHES = ['', '6 4', '2 3', '8 3 2 3'] as const;
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
const INK = '#1f2933';
const MUTED = '#52606d';
const GRID = '#e4e7eb';

/** Rounds a coordinate to 0.01 px so output is compact and stable. */
function c(v: number): string {
  const r = Math.round(v * 100) / 100;
  return String(r === 0 ? 0 : r);
}

/** The "nice" step (1, 2 or 5 times a power of ten) closest above `raw`. */
function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nice * power;
}

/** Nice y ticks covering [min, max] with about `target` intervals. */
export function niceTicks(
  min: number,
  max: number,
  target = 5,
): { lo: number; hi: number; step: number; ticks: number[] } {
  if (!(Number.isFinite(min) && Number.isFinite(max)))
    throw new Error('niceTicks: min and max must be finite');
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const step = niceStep((max - min) / target);
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  const n = Math.round((hi - lo) / step);
  // Rebuild each tick from an integer multiple so floating error does not accumulate (0.30000000000000004).
  const decimals = decimalsOf(step);
  for (let i = 0; i <= n; i++) ticks.push(Number((lo + i * step).toFixed(decimals)));
  return { lo: ticks[0] ?? lo, hi: ticks[ticks.length - 1] ?? hi, step, ticks };
}

/** Decimals needed to write multiples of a nice step exactly (0.2 -> 1, 0.05 -> 2, 10 -> 0). */
function decimalsOf(step: number): number {
  return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
}

/** A point's value for tooltips and the text alternative. */
function valueText(v: number, format: 'number' | 'percent'): string {
  return format === 'percent' ? formatPercent(v, 1) : formatSignificant(v, 4);
}

/** Renders the chart. Throws on a spec that cannot be drawn (series length differs from `x`). */
export function renderLineChart(spec: LineChartSpec): string {
  const width = spec.width ?? 560;
  const height = spec.height ?? 300;
  const format = spec.format ?? 'number';
  const xs = spec.x;
  for (const s of spec.series) {
    if (s.values.length !== xs.length)
      throw new Error(
        `renderLineChart: series "${s.name}" has ${s.values.length} values for ${xs.length} x positions; give one value (or null) per iteration`,
      );
  }
  const byValue = spec.xAxis === 'value';
  if (!byValue)
    for (let i = 1; i < xs.length; i++) {
      if (!((xs[i] as number) > (xs[i - 1] as number)))
        throw new Error('renderLineChart: x must be strictly ascending iteration numbers');
    }
  const pointName = (x: number, j: number): string => spec.pointLabels?.[j] ?? `iteration ${x}`;

  const legend = spec.series.length > 1;
  const margin = { top: legend ? 60 : 40, right: 20, bottom: 50, left: 64 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const bottom = margin.top + plotH;

  // Y domain from every drawable value, plus what the spec asks to include.
  const ys: number[] = [];
  for (const s of spec.series) for (const v of s.values) if (finite(v) !== null) ys.push(v as number);
  const hasData = ys.length > 0;
  for (const v of spec.yInclude ?? []) if (Number.isFinite(v)) ys.push(v);
  if (spec.reference && Number.isFinite(spec.reference.y)) ys.push(spec.reference.y);
  const yMin = ys.length ? Math.min(...ys) : 0;
  const yMax = ys.length ? Math.max(...ys) : 1;
  const { lo, hi, step, ticks } = niceTicks(yMin, yMax, plotH < 180 ? 4 : 5);
  const py = (v: number): number => margin.top + plotH - ((v - lo) / (hi - lo)) * plotH;

  // X domain: the iterations, padded so end points do not sit on the frame; or nice ticks over the values.
  const finiteXs = xs.filter((v) => Number.isFinite(v));
  const xTicks = byValue
    ? niceTicks(finiteXs.length ? Math.min(...finiteXs) : 0, finiteXs.length ? Math.max(...finiteXs) : 1, 5)
    : null;
  const x0 = xTicks ? xTicks.lo : xs.length ? (xs[0] as number) : 0;
  const x1 = xTicks ? xTicks.hi : xs.length ? (xs[xs.length - 1] as number) : 1;
  const pad = xTicks ? 0 : x1 > x0 ? Math.max(0.25, (x1 - x0) * 0.04) : 0.5;
  const px = (v: number): number => margin.left + ((v - x0 + pad) / (x1 - x0 + 2 * pad)) * plotW;

  const tickText = (v: number): string =>
    format === 'percent'
      ? formatPercent(v, Math.max(0, decimalsOf(step) - 2))
      : formatFixed(v, decimalsOf(step));

  const names = spec.series.map((s) => s.name).join(', ');
  const range = !xs.length
    ? ''
    : byValue
      ? ` against ${spec.xLabel ?? 'x'}`
      : ` over iterations ${x0} to ${x1}`;
  const label = `${spec.title}: line chart of ${names || 'no series'}${range}.`;
  const desc = spec.series
    .map((s) => {
      const pts = xs.map((x, i) => {
        const v = finite(s.values[i]);
        const at = byValue ? `${pointName(x, i)} (x ${formatSignificant(x, 3)})` : `iteration ${x}`;
        return `${at}: ${v === null ? 'no value' : valueText(v, format)}`;
      });
      return `${s.name}: ${pts.join('; ')}.`;
    })
    .join(' ');
  const bestNote = finite(spec.best ?? null) === null ? '' : ` Best iteration: ${spec.best}.`;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(label + bestNote)}" font-family="${escapeXml(FONT)}" font-size="12" class="chart">`,
  );
  out.push(`<title>${escapeXml(spec.title)}</title>`);
  out.push(`<desc>${escapeXml(desc + bestNote)}</desc>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${margin.left}" y="22" font-size="15" font-weight="600" fill="${INK}">${escapeXml(spec.title)}</text>`,
  );

  // Legend: one row under the title, swatches in series order.
  if (legend) {
    let lx = margin.left;
    const ly = 42;
    out.push('<g class="legend">');
    spec.series.forEach((s, i) => {
      const color = s.color ?? PALETTE[i % PALETTE.length];
      const dash = s.dash ?? DASHES[i % DASHES.length];
      out.push(
        `<line x1="${c(lx)}" y1="${ly}" x2="${c(lx + 24)}" y2="${ly}" stroke="${escapeXml(color ?? INK)}" stroke-width="2.5"${dash ? ` stroke-dasharray="${escapeXml(dash)}"` : ''}/>`,
        `<circle cx="${c(lx + 12)}" cy="${ly}" r="3.5" fill="#ffffff" stroke="${escapeXml(color ?? INK)}" stroke-width="2"/>`,
        `<text x="${c(lx + 30)}" y="${ly + 4}" fill="${INK}">${escapeXml(s.name)}</text>`,
      );
      lx += 30 + s.name.length * 6.8 + 22;
    });
    out.push('</g>');
  }

  // Grid and y ticks.
  out.push(`<g class="y-axis" fill="${MUTED}" text-anchor="end">`);
  for (const t of ticks) {
    const y = c(py(t));
    out.push(
      `<line x1="${margin.left}" y1="${y}" x2="${margin.left + plotW}" y2="${y}" stroke="${GRID}" stroke-width="1"/>`,
      `<text x="${margin.left - 8}" y="${c(py(t) + 4)}">${escapeXml(tickText(t))}</text>`,
    );
  }
  out.push('</g>');
  if (spec.yLabel) {
    const cy = c(margin.top + plotH / 2);
    out.push(
      `<text transform="translate(16 ${cy}) rotate(-90)" text-anchor="middle" fill="${MUTED}">${escapeXml(spec.yLabel)}</text>`,
    );
  }

  // X axis: a tick per iteration (thinned when there are many).
  const every = Math.max(1, Math.ceil(xs.length / 12));
  out.push(`<g class="x-axis" fill="${MUTED}" text-anchor="middle">`);
  out.push(
    `<line x1="${margin.left}" y1="${c(bottom)}" x2="${margin.left + plotW}" y2="${c(bottom)}" stroke="${MUTED}" stroke-width="1"/>`,
  );
  if (xTicks)
    for (const t of xTicks.ticks) {
      const X = c(px(t));
      out.push(
        `<line x1="${X}" y1="${c(bottom)}" x2="${X}" y2="${c(bottom + 5)}" stroke="${MUTED}" stroke-width="1"/>`,
        `<text x="${X}" y="${c(bottom + 19)}">${escapeXml(formatFixed(t, decimalsOf(xTicks.step)))}</text>`,
      );
    }
  xs.forEach((x, i) => {
    if (xTicks || (i % every !== 0 && i !== xs.length - 1)) return;
    const X = c(px(x));
    out.push(
      `<line x1="${X}" y1="${c(bottom)}" x2="${X}" y2="${c(bottom + 5)}" stroke="${MUTED}" stroke-width="1"/>`,
      `<text x="${X}" y="${c(bottom + 19)}">${escapeXml(x === 0 ? '0 (init)' : String(x))}</text>`,
    );
  });
  out.push('</g>');
  out.push(
    `<text x="${c(margin.left + plotW / 2)}" y="${height - 8}" text-anchor="middle" fill="${MUTED}">${escapeXml(spec.xLabel ?? 'iteration (0 = initial policy)')}</text>`,
  );

  // Reference line.
  if (spec.reference && Number.isFinite(spec.reference.y)) {
    const y = c(py(spec.reference.y));
    out.push(
      `<g class="reference"><line x1="${margin.left}" y1="${y}" x2="${margin.left + plotW}" y2="${y}" stroke="${MUTED}" stroke-width="1" stroke-dasharray="2 3"/>`,
      `<text x="${margin.left + plotW - 4}" y="${c(py(spec.reference.y) - 5)}" text-anchor="end" fill="${MUTED}" font-size="11">${escapeXml(spec.reference.label)}</text></g>`,
    );
  }

  // Best iteration marker.
  const best = finite(spec.best ?? null);
  // On a value axis the best iteration is the point labelled with its number.
  const bestAt =
    best === null ? -1 : byValue ? (spec.pointLabels ?? []).indexOf(String(best)) : xs.indexOf(best);
  const bestX = bestAt >= 0 ? (xs[bestAt] as number) : Number.NaN;
  if (best !== null && Number.isFinite(bestX)) {
    const X = c(px(bestX));
    const bestLabel = spec.bestLabel ?? 'best';
    out.push(
      `<g class="best-marker"><title>${escapeXml(`${bestLabel}: iteration ${best}`)}</title>`,
      `<line x1="${X}" y1="${margin.top - 6}" x2="${X}" y2="${c(bottom)}" stroke="${INK}" stroke-width="1.25" stroke-dasharray="5 4"/>`,
      `<text x="${c(px(bestX) + 5)}" y="${margin.top + 6}" fill="${INK}" font-size="11" font-weight="600" stroke="#ffffff" stroke-width="3" paint-order="stroke">${escapeXml(bestLabel)}</text></g>`,
    );
  }

  // Series: the line (broken at nulls) then the points with tooltips.
  spec.series.forEach((s, i) => {
    const color = escapeXml(s.color ?? PALETTE[i % PALETTE.length] ?? INK);
    const dash = s.dash ?? DASHES[i % DASHES.length];
    let d = '';
    let pen = false;
    xs.forEach((x, j) => {
      const v = finite(s.values[j]);
      if (v === null || !Number.isFinite(x)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${c(px(x))} ${c(py(v))}`;
      pen = true;
    });
    out.push(`<g class="series" data-series="${escapeXml(s.name)}">`);
    if (d.includes('L'))
      out.push(
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="2.5" stroke-linejoin="round" stroke-linecap="round"${dash ? ` stroke-dasharray="${escapeXml(dash)}"` : ''}/>`,
      );
    xs.forEach((x, j) => {
      const v = finite(s.values[j]);
      if (v === null || !Number.isFinite(x)) return;
      const X = c(px(x));
      const Y = c(py(v));
      const at = byValue ? `${pointName(x, j)}, x ${formatSignificant(x, 3)}` : `iteration ${x}`;
      if (byValue && i === 0 && spec.pointLabels?.[j] !== undefined)
        out.push(
          `<text x="${c(px(x) + 6)}" y="${c(py(v) - 8)}" fill="${MUTED}" font-size="10">${escapeXml(spec.pointLabels[j] as string)}</text>`,
        );
      out.push(
        `<g class="point"><title>${escapeXml(`${s.name}, ${at}: ${valueText(v, format)}`)}</title>`,
        `<circle cx="${X}" cy="${Y}" r="4" fill="#ffffff" stroke="${color}" stroke-width="2.25"/>`,
        `<circle cx="${X}" cy="${Y}" r="11" fill="#000000" fill-opacity="0"/></g>`,
      );
    });
    out.push('</g>');
  });

  if (!hasData)
    out.push(
      `<text x="${c(margin.left + plotW / 2)}" y="${c(margin.top + plotH / 2)}" text-anchor="middle" fill="${MUTED}">no data</text>`,
    );
  out.push('</svg>');
  return out.join('\n');
}
