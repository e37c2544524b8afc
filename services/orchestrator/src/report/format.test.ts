import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  escapeXml,
  formatCount,
  formatDuration,
  formatFixed,
  formatPercent,
  formatSignificant,
  MISSING,
} from './format.js';

test('escapeXml escapes markup characters and quotes', () => {
  assert.equal(
    escapeXml(`<script>alert("x" + 'y') & more</script>`),
    '&lt;script&gt;alert(&quot;x&quot; + &#39;y&#39;) &amp; more&lt;/script&gt;',
  );
  // Already-escaped text is escaped again, not passed through.
  assert.equal(escapeXml('&amp;'), '&amp;amp;');
});

test('escapeXml replaces characters XML cannot carry', () => {
  assert.equal(escapeXml('a\u0000b\u0007c\td\ne'), 'a\uFFFDb\uFFFDc\td\ne');
  assert.equal(escapeXml('x\uD800y'), 'x\uFFFDy');
  assert.equal(escapeXml('ok \uD83D\uDE00'), 'ok \uD83D\uDE00');
});

test('missing values render as a dash', () => {
  for (const v of [null, undefined, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.equal(formatFixed(v, 2), MISSING);
    assert.equal(formatPercent(v), MISSING);
    assert.equal(formatCount(v), MISSING);
    assert.equal(formatSignificant(v), MISSING);
    assert.equal(formatDuration(v), MISSING);
  }
});

test('numbers: fixed decimals, typographic minus, no negative zero, grouping', () => {
  assert.equal(formatFixed(1.23456, 3), '1.235');
  assert.equal(formatFixed(-0.5, 2), '\u22120.50');
  assert.equal(formatFixed(-0.0001, 2), '0.00');
  assert.equal(formatFixed(1234567.891, 1), '1,234,567.9');
  assert.equal(formatCount(12345.4), '12,345');
  assert.equal(formatPercent(0.86123), '86.1%');
  assert.equal(formatPercent(1, 0), '100%');
});

test('formatSignificant keeps small and large values readable', () => {
  assert.equal(formatSignificant(0.001), '0.001');
  assert.equal(formatSignificant(0.00112), '0.00112');
  assert.equal(formatSignificant(29.44), '29.4');
  assert.equal(formatSignificant(12345), '12,345');
  assert.equal(formatSignificant(-2.5), '\u22122.5');
  assert.equal(formatSignificant(0), '0');
  assert.equal(formatSignificant(5e-7), '5.00e-7');
});

test('formatDuration picks a readable unit', () => {
  assert.equal(formatDuration(12.34), '12.3 s');
  assert.equal(formatDuration(245), '4 min 05 s');
  assert.equal(formatDuration(3720), '1 h 02 min');
  assert.equal(formatDuration(-1), MISSING);
});
