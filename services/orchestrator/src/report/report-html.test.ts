import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunSummary } from '@rlhf/workflow';
import { demoSummary } from '../../test/fixtures/demo-summary.js';
import { findAll, hasClass, parseXml, textOf, type XmlElement } from '../../test/fixtures/xml-check.js';
import { MISSING } from './format.js';
import { renderReport } from './report-html.js';

const cells = (tr: XmlElement) => tr.children.map((c) => textOf(c).trim());
const tableRows = (root: XmlElement, cls: string): XmlElement[] => {
  const table = findAll(root, (e) => e.name === 'table' && hasClass(e, cls))[0];
  assert.ok(table, `table.${cls}`);
  return findAll(table, (e) => e.name === 'tbody')[0]?.children ?? [];
};

test('the report is one well-formed page with the run header, metrics, charts and samples', () => {
  const { html } = renderReport(demoSummary());
  assert.ok(html.startsWith('<!DOCTYPE html>\n<html lang="en">'));
  const root = parseXml(html);
  assert.equal(root.name, 'html');
  const h1 = findAll(root, (e) => e.name === 'h1')[0] as XmlElement;
  assert.equal(textOf(h1), 'sentiment-demo');
  const text = textOf(root);
  for (const expected of [
    'seed 42',
    'namespace default',
    'λ = 0.00112 per character',
    'fitted (auto): λ = 0.00112, R² = 0.874',
    '83.2% held-out accuracy',
    'label Bayes rate 86.9% (3.7 pp below it)',
    'wall time 1 min 25 s',
    'nats-obj://rlhf-runs/default/sentiment-demo/iter-2/policy',
  ])
    assert.ok(text.includes(expected), expected);
  const rows = tableRows(root, 'metrics');
  assert.deepEqual(
    rows.map((r) => cells(r)[0]),
    ['0 · initial', '1', '2 best', '3'],
  );
  assert.deepEqual(cells(rows[0] as XmlElement), [
    '0 · initial',
    '0.412',
    '0.091',
    '50.0%',
    '0.00',
    '10.6',
    '97.3%',
    MISSING,
    MISSING,
    MISSING,
    MISSING,
  ]);
  assert.deepEqual(cells(rows[3] as XmlElement), [
    '3',
    '1.877',
    '2.080',
    '88.4%',
    '5.12',
    '6.8',
    '94.9%',
    '246',
    '0.301',
    '89.4%',
    '20.2 s',
  ]);
  assert.equal(tableRows(root, 'samples').length, 3);
  assert.deepEqual(
    tableRows(root, 'stages').map((r) => cells(r).length),
    [7, 7, 7],
  );
});

test('the best iteration row is highlighted and marked, and only that row', () => {
  for (const best of [2, 0, 3]) {
    const s = demoSummary();
    s.bestIteration = best;
    const root = parseXml(renderReport(s).html);
    const rows = tableRows(root, 'metrics');
    const marked = rows.filter((r) => hasClass(r, 'best'));
    assert.equal(marked.length, 1);
    assert.equal(rows.indexOf(marked[0] as XmlElement), best);
    const badges = findAll(root, (e) => hasClass(e, 'badge'));
    assert.equal(badges.length, 1);
    assert.equal(textOf(badges[0] as XmlElement), 'best');
    assert.ok(
      rows[best]?.children[0]?.children.includes(badges[0] as XmlElement),
      'badge is in the best row',
    );
    // Every chart marks the same iteration.
    for (const fig of findAll(root, (e) => e.name === 'figure')) {
      const svg = fig.children[0] as XmlElement;
      assert.match(svg.attrs['aria-label'] ?? '', new RegExp(`Best iteration: ${best}\\.`));
      assert.equal(findAll(svg, (e) => hasClass(e, 'best-marker')).length, 1);
    }
  }
  const none = demoSummary();
  none.bestIteration = null;
  const root = parseXml(renderReport(none).html);
  assert.equal(tableRows(root, 'metrics').filter((r) => hasClass(r, 'best')).length, 0);
  assert.equal(findAll(root, (e) => hasClass(e, 'best-marker')).length, 0);
});

test('hostile text from the summary is escaped everywhere', () => {
  const evil = '<script>alert(1)</script>';
  const s = demoSummary();
  s.run.name = `"><img src=x onerror=alert(1)>${evil}`;
  s.run.namespace = `ns&${evil}`;
  s.judge.type = evil;
  s.bestPolicy = `file:///x"onmouseover="alert(1)`;
  s.initial.policy = `'${evil}`;
  s.samples = [
    {
      iteration: 1,
      prompt: `</td></tr></table>${evil}`,
      chosen: `${evil} &amp; <b>bold</b> \u0000`,
      rejected: `<!-- --> <style>body{display:none}</style> ]]>`,
      chosenScore: 1,
      rejectedScore: -1,
    },
  ];
  const { html, images } = renderReport(s);
  assert.ok(!html.includes(evil), 'no raw <script>');
  assert.ok(!html.includes('<img'), 'no raw <img');
  assert.ok(!html.includes('<b>bold'), 'no raw tags from model output');
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(html.includes('&amp;amp;'), 'an entity in model output is shown literally');
  const root = parseXml(html);
  assert.equal(findAll(root, (e) => ['script', 'img', 'b'].includes(e.name)).length, 0);
  assert.equal(findAll(root, (e) => e.name === 'style').length, 1, 'only the report’s own style element');
  assert.equal(findAll(root, (e) => Object.keys(e.attrs).some((a) => a.startsWith('on'))).length, 0);
  // The hostile sample is still one row of four cells, its text intact.
  const rows = tableRows(root, 'samples');
  assert.equal(rows.length, 1);
  const texts = findAll(rows[0] as XmlElement, (e) => hasClass(e, 'text')).map(textOf);
  assert.deepEqual(texts, [
    `</td></tr></table>${evil}`,
    `${evil} &amp; <b>bold</b> \uFFFD`,
    `<!-- --> <style>body{display:none}</style> ]]>`,
  ]);
  assert.equal(textOf(findAll(root, (e) => e.name === 'h1')[0] as XmlElement), s.run.name);
  for (const svg of Object.values(images)) parseXml(svg);
});

test('null metrics render as a dash and their charts or series are left out', () => {
  const s: RunSummary = demoSummary();
  for (const r of [s.initial, ...s.iterations]) {
    r.goldReward = null;
    r.winRate = null;
    r.grammaticalRate = null;
  }
  const it2 = s.iterations[1];
  assert.ok(it2);
  it2.kl = null;
  it2.dpoLoss = null;
  it2.dpoAccuracy = null;
  it2.meanLength = Number.NaN;
  s.judge = { type: 'preference', lengthPenalty: null };
  delete s.rewardModel;
  s.preferenceModel = { heldOutAccuracy: null, labelBayesRate: 0.87 };
  const { html, images } = renderReport(s);
  assert.deepEqual(Object.keys(images), [
    'reward.svg',
    'kl.svg',
    'mean-length.svg',
    'dpo.svg',
    'over-optimisation.svg',
  ]);
  assert.ok(!/\b(null|undefined|NaN|Infinity)\b/.test(html), 'no raw null/NaN/undefined in the page');
  const root = parseXml(html);
  const row2 = cells(tableRows(root, 'metrics')[2] as XmlElement);
  assert.deepEqual(row2.slice(2, 7), [MISSING, MISSING, MISSING, MISSING, MISSING]);
  assert.deepEqual(row2.slice(8, 10), [MISSING, MISSING]);
  const text = textOf(root);
  assert.ok(text.includes('Length penaltynone'));
  assert.ok(text.includes(`${MISSING} held-out accuracy`));
  assert.ok(!text.includes('Reward model (BT)'));
  // The reward chart keeps only the proxy series; the KL chart skips iteration 2's point.
  const reward = parseXml(images['reward.svg'] as string);
  assert.deepEqual(
    findAll(reward, (e) => hasClass(e, 'series')).map((e) => e.attrs['data-series']),
    ['proxy reward (judge)'],
  );
  const kl = parseXml(images['kl.svg'] as string);
  assert.equal(findAll(kl, (e) => hasClass(e, 'point')).length, 3);
});

test('a run with no iterations and no samples still renders', () => {
  const s = demoSummary();
  s.iterations = [];
  s.samples = [];
  s.bestIteration = 0;
  const { html, images } = renderReport(s);
  const root = parseXml(html);
  assert.equal(tableRows(root, 'metrics').length, 1);
  assert.ok(textOf(root).includes('No sample pairs were recorded.'));
  assert.ok(!('dpo.svg' in images));
  assert.equal(findAll(root, (e) => e.name === 'table' && hasClass(e, 'stages')).length, 0);
});

test('images match the charts embedded in the page, one per metric group', () => {
  const { html, images } = renderReport(demoSummary());
  const root = parseXml(html);
  const figures = findAll(root, (e) => e.name === 'figure');
  const names = figures.map((f) => f.attrs['data-image']);
  assert.deepEqual(names, [
    'reward.svg',
    'win-rate.svg',
    'kl.svg',
    'mean-length.svg',
    'grammatical-rate.svg',
    'dpo.svg',
    'over-optimisation.svg',
  ]);
  assert.deepEqual(Object.keys(images), names);
  for (const [name, svg] of Object.entries(images)) {
    assert.ok(html.includes(svg.trimEnd()), `${name} is inlined verbatim`);
    const el = parseXml(svg);
    assert.equal(el.name, 'svg');
    assert.equal(el.attrs.role, 'img');
    assert.ok(el.attrs['aria-label']);
  }
  const reward = parseXml(images['reward.svg'] as string);
  assert.deepEqual(
    findAll(reward, (e) => hasClass(e, 'series')).map((e) => e.attrs['data-series']),
    ['proxy reward (judge)', 'gold reward'],
  );
  // DPO metrics exist from iteration 1 on: three points per series, none at the initial policy.
  const dpo = parseXml(images['dpo.svg'] as string);
  for (const series of findAll(dpo, (e) => hasClass(e, 'series')))
    assert.equal(findAll(series, (e) => hasClass(e, 'point')).length, 3);
});

test('the page is self-contained: no scripts, no external resources', () => {
  const { html } = renderReport(demoSummary());
  const root = parseXml(html);
  assert.equal(
    findAll(root, (e) => ['script', 'link', 'iframe', 'img', 'object', 'embed'].includes(e.name)).length,
    0,
  );
  assert.equal(findAll(root, (e) => 'src' in e.attrs || 'href' in e.attrs).length, 0);
  assert.ok(!/url\(|@import/.test(html));
  // The only URL is the SVG namespace name (an identifier, never fetched).
  const urls = new Set(html.match(/https?:\/\/[^\s"'<]+/g));
  assert.deepEqual([...urls], ['http://www.w3.org/2000/svg']);
  assert.equal(findAll(root, (e) => e.name === 'meta' && e.attrs.charset === 'utf-8').length, 1);
});

test('rendering is deterministic and does not modify its input', () => {
  const s = demoSummary();
  const before = JSON.stringify(s);
  const a = renderReport(s);
  const b = renderReport(JSON.parse(JSON.stringify(s)) as RunSummary);
  assert.equal(a.html, b.html);
  assert.deepEqual(a.images, b.images);
  assert.equal(JSON.stringify(s), before);
});

test('the over-optimisation chart puts both rewards as gains over pi_0 against KL, and the gold pick is named', () => {
  const s = demoSummary();
  const { html, images } = renderReport(s);
  const svg = images['over-optimisation.svg'] ?? '';
  const root = parseXml(svg);
  const titles = findAll(root, (e) => e.name === 'title').map(textOf);
  // pi_0 sits at KL 0 with zero gain on both lines; iteration 3 at its KL, its gain over pi_0's gold.
  assert.ok(titles.includes('gold reward gain, 0, x 0: 0'), titles.join(' | '));
  const gold3 = (s.iterations[2]?.goldReward as number) - (s.initial.goldReward as number);
  assert.ok(
    titles.some(
      (t) => t.startsWith('gold reward gain, 3, x 5.12: ') && t.includes(String(gold3).slice(0, 4)),
    ),
    titles.join(' | '),
  );
  // The best iteration by proxy is marked; the card says which the gold would have picked.
  s.bestIteration = 2;
  s.iterations[2] = { ...(s.iterations[2] as (typeof s.iterations)[number]), proxyReward: 0 };
  const picked = renderReport(s).html;
  assert.match(picked, /the gold would pick iteration 3/);
  assert.match(html, /the gold picks the same|the gold would pick/);
});
