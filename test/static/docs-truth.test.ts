/**
 * The docs describe the product as it is. The project documents its design in docs/ARCHITECTURE.md and
 * nowhere else, so no tracked file may point at a design note the repository does not have; and the docs
 * state current facts with the command that shows them, so they carry no history (that lives in
 * CHANGELOG.md and the commit log).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const self = 'test/static/docs-truth.test.ts';
// Built from parts so that this file does not name the note it forbids.
const missingNote = ['DESIGN', 'md'].join('.');

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\0')
    .filter((f) => f !== '');
}

function read(file: string): string | null {
  try {
    return readFileSync(join(root, file), 'utf8');
  } catch {
    // Listed by git but not in the work tree (deleted and not yet staged): nothing to check.
    return null;
  }
}

/** Each history marker the docs must not carry, with what it catches. */
const historyMarkers: ReadonlyArray<{ what: string; pattern: RegExp }> = [
  { what: 'a session number', pattern: /\bsessions?[ -]?\d+/i },
  { what: 'a file named for a session', pattern: /session\d/i },
  { what: 'work narrated as "this session"', pattern: /\b(this|last|previous) session\b/i },
  { what: 'an old value in "(was ...)"', pattern: /\(was [^)]*\)/i },
  // A 7-40 digit hex word with a letter and a digit: a commit hash (digests in URIs and code spans aside).
  {
    what: 'a commit hash',
    pattern: /(?<![\w/:.`-])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}(?![\w/`-])/,
  },
];

/** The markers a text carries, as "line N: what (match)". */
function historyIn(text: string): string[] {
  const found: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const { what, pattern } of historyMarkers) {
      const m = pattern.exec(line);
      if (m) found.push(`line ${i + 1}: ${what} (${m[0]})`);
    }
  });
  return found;
}

test(`no tracked file but this test mentions ${missingNote}`, () => {
  const files = trackedFiles();
  assert.ok(files.includes(self), 'git lists this test among the tracked files');
  const hits = files.filter((f) => f !== self && read(f)?.includes(missingNote));
  assert.deepEqual(hits, [], `point these at docs/ARCHITECTURE.md instead of ${missingNote}`);
});

test('docs/*.md and README.md carry no history markers', () => {
  const docs = trackedFiles().filter((f) => f === 'README.md' || /^docs\/[^/]+\.md$/.test(f));
  assert.ok(docs.includes('docs/ARCHITECTURE.md'), 'the docs include docs/ARCHITECTURE.md');
  const problems = docs.flatMap((f) => historyIn(read(f) ?? '').map((p) => `${f} ${p}`));
  assert.deepEqual(problems, [], 'state what is true now; history goes to CHANGELOG.md');
});

test('the history check catches each marker and passes plain facts', () => {
  for (const text of [
    'since session 9 the loop is faster',
    'see docs/results-session8-host.json',
    'measured this session',
    'a learning rate of 2e-3 (was 1e-3)',
    'the commit before them (93315f0) was slower',
  ]) {
    assert.notDeepEqual(historyIn(text), [], text);
  }
  for (const text of [
    'npx rlhf bench engine: 2.5x at batch 1 (median of 5 runs)',
    'a digest like sha256:9f86d081884c7d65 stays allowed',
    'a URI nats-obj://rlhf-artifacts/runs/ns/run/iter-2/models/policy',
    'the key `a1b2c3d4e5` in a code span',
    'hidden 64, 2 layers, 1e-3 learning rate, 4 epochs',
  ]) {
    assert.deepEqual(historyIn(text), [], text);
  }
});
