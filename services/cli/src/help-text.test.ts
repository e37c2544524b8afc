import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { reflow, reflowingHelp } from './help-text.js';

test('reflow joins prose lines into paragraphs and keeps blank and indented lines', () => {
  assert.equal(
    reflow('one two\nthree\n\nfour\n  item  a b\n  item2  c\nafter'),
    'one two three\n\nfour\n  item  a b\n  item2  c\nafter',
  );
});

test('help wraps whole paragraphs to the width, indented items under their text', () => {
  const words = Array.from({ length: 40 }, (_, i) => `word${i}`);
  const cmd = new Command('demo')
    .configureHelp({ ...reflowingHelp, helpWidth: 60 })
    .description(
      [
        words.slice(0, 20).join(' '),
        words.slice(20).join(' '),
        '',
        `  term  ${words.slice(0, 15).join(' ')}`,
      ].join('\n'),
    );
  const lines = cmd.helpInformation().split('\n');
  assert.ok(
    lines.every((l) => l.length <= 60),
    lines.join('\n'),
  );
  // The first paragraph is filled line by line: no short line before its last.
  const para = lines.slice(2, lines.indexOf('', 2));
  assert.ok(
    para.slice(0, -1).every((l) => l.length > 50),
    para.join('\n'),
  );
  assert.equal(para.join(' '), words.join(' '));
  const item = lines.filter((l) => l.startsWith('  term  ') || l.startsWith('        word'));
  assert.ok(item.length > 1);
  assert.equal(item.map((l) => l.trim()).join(' '), `term  ${words.slice(0, 15).join(' ')}`);
});
