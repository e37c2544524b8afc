import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findAll, parseXml, textOf } from './xml-check.js';

test('parseXml accepts well-formed markup and returns its tree', () => {
  const root = parseXml(
    '<!DOCTYPE html>\n<html lang="en"><!-- c --><p class="a b">x &amp; <b>y</b> &#60;z&#x3e;</p><br/></html>',
  );
  assert.equal(root.name, 'html');
  assert.equal(root.attrs.lang, 'en');
  assert.deepEqual(
    root.children.map((c) => c.name),
    ['p', 'br'],
  );
  assert.equal(textOf(root), 'x & y <z>');
  assert.equal(findAll(root, (e) => e.name === 'b').length, 1);
});

test('parseXml rejects markup that is not well-formed', () => {
  const bad = [
    '<a><b></a></b>',
    '<a>',
    '</a>',
    '<a></a><b></b>',
    '<a x=1></a>',
    '<a x="1" x="2"></a>',
    '<a x="<"></a>',
    '<a>fish & chips</a>',
    '<a>&nbsp;</a>',
    '<a>x</a>trailing',
    '<a x="1"y="2"></a>',
    '<a><!-- a -- b --></a>',
  ];
  for (const text of bad) assert.throws(() => parseXml(text), /not well-formed/, text);
});
