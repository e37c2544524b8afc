import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
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

test('rlhf experiment shows its default run file relative to the working directory, not a checkout path', async () => {
  const { buildProgram } = await import('./program.js');
  const { defaultRunFile, resolveDefaultRunFile } = await import('./commands/experiment.js');
  const experiment = buildProgram().commands.find((c) => c.name() === 'experiment');
  assert.ok(experiment, 'rlhf has an experiment command');
  const help = experiment.helpInformation();
  assert.match(help, /\(default: "examples\/quickstart\.yaml"\)/);
  const checkout = fileURLToPath(new URL('../../..', import.meta.url));
  assert.ok(!help.includes(checkout), `help names the checkout ${checkout}`);
  // In a checkout the working directory's file is used; elsewhere the one shipped next to the package.
  assert.equal(resolveDefaultRunFile(checkout), join(checkout, defaultRunFile));
  const elsewhere = mkdtempSync(join(tmpdir(), 'rlhf-experiment-'));
  try {
    const shipped = resolveDefaultRunFile(elsewhere);
    assert.ok(!shipped.startsWith(elsewhere), shipped);
    assert.ok(existsSync(shipped), `${shipped} exists`);
    assert.ok(shipped.endsWith(join('examples', 'quickstart.yaml')), shipped);
  } finally {
    rmSync(elsewhere, { recursive: true });
  }
});
