import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findAll, hasClass, parseXml, textOf, type XmlElement } from '../../test/fixtures/xml-check.js';
import { type LineChartSpec, niceTicks, renderLineChart } from './svg-chart.js';

const spec = (over: Partial<LineChartSpec> = {}): LineChartSpec => ({
  title: 'Validation reward',
  x: [0, 1, 2, 3],
  series: [
    { name: 'proxy', values: [0.4, 1.3, 1.9, 1.88] },
    { name: 'gold', values: [0.09, null, 1.8, 2.1] },
  ],
  yLabel: 'reward',
  best: 2,
  ...over,
});

const byClass = (root: XmlElement, cls: string) => findAll(root, (e) => hasClass(e, cls));
/** The x coordinate of each path command ("M x y" / "L x y") of a series' line. */
const commands = (d: string) => [...d.matchAll(/([ML])([-\d.]+) ([-\d.]+)/g)].map((m) => m[1]);

test('the chart is a well-formed, accessible SVG', () => {
  const svg = renderLineChart(spec());
  const root = parseXml(svg);
  assert.equal(root.name, 'svg');
  assert.equal(root.attrs.xmlns, 'http://www.w3.org/2000/svg');
  assert.equal(root.attrs.role, 'img');
  assert.match(
    root.attrs['aria-label'] ?? '',
    /^Validation reward: line chart of proxy, gold over iterations 0 to 3\./,
  );
  assert.match(root.attrs['aria-label'] ?? '', /Best iteration: 2\./);
  assert.equal(root.children[0]?.name, 'title');
  assert.equal(textOf(root.children[0] as XmlElement), 'Validation reward');
  const desc = root.children.find((c) => c.name === 'desc');
  assert.match(
    textOf(desc as XmlElement),
    /gold: iteration 0: 0\.09; iteration 1: no value; iteration 2: 1\.8; iteration 3: 2\.1\./,
  );
  assert.doesNotMatch(svg, /\sid="/, 'no ids: several charts are inlined into one page');
});

test('each non-null value is a point with its value in a <title>; nulls are skipped and break the line', () => {
  const root = parseXml(renderLineChart(spec()));
  const series = byClass(root, 'series');
  assert.deepEqual(
    series.map((s) => s.attrs['data-series']),
    ['proxy', 'gold'],
  );
  const [proxy, gold] = series as [XmlElement, XmlElement];
  assert.equal(byClass(proxy, 'point').length, 4);
  assert.equal(byClass(gold, 'point').length, 3);
  assert.deepEqual(
    byClass(gold, 'point').map((p) => textOf(p.children[0] as XmlElement)),
    ['gold, iteration 0: 0.09', 'gold, iteration 2: 1.8', 'gold, iteration 3: 2.1'],
  );
  const path = (s: XmlElement) => findAll(s, (e) => e.name === 'path')[0]?.attrs.d ?? '';
  assert.deepEqual(commands(path(proxy)), ['M', 'L', 'L', 'L']);
  // 0.09 stands alone (no line through the missing iteration 1), then 2 -> 3 is a segment.
  assert.deepEqual(commands(path(gold)), ['M', 'M', 'L']);
});

test('points sit at increasing x in iteration order and higher values are drawn higher', () => {
  const root = parseXml(renderLineChart(spec()));
  const circles = findAll(
    byClass(root, 'series')[0] as XmlElement,
    (e) => e.name === 'circle' && e.attrs.r === '4',
  );
  const cx = circles.map((c) => Number(c.attrs.cx));
  const cy = circles.map((c) => Number(c.attrs.cy));
  assert.ok(cx.every((v, i) => i === 0 || v > (cx[i - 1] as number)));
  // values 0.4, 1.3, 1.9, 1.88: SVG y grows downwards.
  assert.ok((cy[0] as number) > (cy[1] as number) && (cy[1] as number) > (cy[2] as number));
  assert.ok((cy[3] as number) > (cy[2] as number));
});

test('the best iteration gets a dashed vertical marker at its x; none when best is null or unknown', () => {
  const root = parseXml(renderLineChart(spec()));
  const markers = byClass(root, 'best-marker');
  assert.equal(markers.length, 1);
  const line = findAll(markers[0] as XmlElement, (e) => e.name === 'line')[0] as XmlElement;
  assert.equal(line.attrs.x1, line.attrs.x2);
  assert.ok(line.attrs['stroke-dasharray']);
  const point2 = findAll(
    byClass(root, 'series')[0] as XmlElement,
    (e) => e.name === 'circle',
  )[4] as XmlElement;
  assert.equal(line.attrs.x1, point2.attrs.cx, 'marker is at iteration 2');
  assert.equal(textOf(markers[0] as XmlElement).includes('best'), true);
  const { best: _omitted, ...withoutBest } = spec();
  for (const s of [spec({ best: null }), spec({ best: 7 }), withoutBest] as LineChartSpec[]) {
    assert.equal(byClass(parseXml(renderLineChart(s)), 'best-marker').length, 0, JSON.stringify(s.best));
  }
});

test('hostile names and titles are escaped', () => {
  const svg = renderLineChart(
    spec({
      title: '<script>alert(1)</script>',
      series: [{ name: '"><img src=x onerror=alert(1)>', values: [1, 2, 3, 4] }],
    }),
  );
  assert.ok(!svg.includes('<script>'));
  assert.ok(!svg.includes('<img'));
  const root = parseXml(svg);
  assert.equal(textOf(root.children[0] as XmlElement), '<script>alert(1)</script>');
  assert.equal(findAll(root, (e) => e.name === 'script' || e.name === 'img').length, 0);
});

test('output is deterministic', () => {
  assert.equal(renderLineChart(spec()), renderLineChart(spec()));
});

test('percent format, reference line and all-null data', () => {
  const root = parseXml(
    renderLineChart(
      spec({
        format: 'percent',
        yInclude: [0, 1],
        reference: { y: 0.5, label: 'parity' },
        series: [{ name: 'win', values: [0.5, 0.74, 0.85, 0.884] }],
      }),
    ),
  );
  const ticks = findAll(byClass(root, 'y-axis')[0] as XmlElement, (e) => e.name === 'text').map(textOf);
  assert.deepEqual(ticks, ['0%', '20%', '40%', '60%', '80%', '100%']);
  assert.equal(textOf(byClass(root, 'reference')[0] as XmlElement).trim(), 'parity');
  assert.equal(textOf(byClass(root, 'point')[3]?.children[0] as XmlElement), 'win, iteration 3: 88.4%');
  assert.equal(byClass(root, 'legend').length, 0, 'no legend for a single series');

  const empty = parseXml(
    renderLineChart(spec({ series: [{ name: 'gold', values: [null, null, null, null] }] })),
  );
  assert.equal(byClass(empty, 'point').length, 0);
  assert.equal(findAll(empty, (e) => e.name === 'path').length, 0);
  assert.ok(findAll(empty, (e) => e.name === 'text').some((t) => textOf(t) === 'no data'));
});

test('a single point and a series of the wrong length', () => {
  const one = parseXml(renderLineChart(spec({ x: [0], series: [{ name: 'kl', values: [0] }], best: 0 })));
  assert.equal(byClass(one, 'point').length, 1);
  assert.equal(byClass(one, 'best-marker').length, 1);
  assert.throws(
    () => renderLineChart(spec({ series: [{ name: 'kl', values: [1, 2] }] })),
    /series "kl" has 2 values for 4 x positions/,
  );
  assert.throws(() => renderLineChart(spec({ x: [0, 2, 1, 3] })), /ascending/);
});

test('niceTicks covers the data with round steps', () => {
  for (const [lo, hi] of [
    [0.09, 2.08],
    [-1.87, 2.96],
    [0, 1],
    [6.8, 10.6],
    [0.3, 0.3],
    [0, 0],
    [-5e-4, 1e-3],
    [1200, 98765],
  ] as const) {
    const t = niceTicks(lo, hi);
    assert.ok(t.lo <= lo && t.hi >= hi, `${lo}..${hi} within ${t.lo}..${t.hi}`);
    assert.ok(t.ticks.length >= 3 && t.ticks.length <= 12, `${t.ticks.length} ticks for ${lo}..${hi}`);
    const mantissa = t.step / 10 ** Math.floor(Math.log10(t.step));
    assert.ok(
      [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9),
      `step ${t.step}`,
    );
    for (const v of t.ticks) assert.ok(String(v).length < 12, `clean tick ${v}`);
  }
  assert.deepEqual(niceTicks(0.1, 0.7).ticks, [0, 0.2, 0.4, 0.6, 0.8]);
  assert.deepEqual(niceTicks(-1.87, 2.96).ticks, [-2, -1, 0, 1, 2, 3]);
});
