import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asRlhfError, grpcStatusOf, RlhfError } from './errors.js';
import { formatError } from './exit.js';

class LibraryError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly fix?: string,
  ) {
    super(message);
  }
}

test('errors of the same shape from other libraries map to RlhfError; others stay unknown', () => {
  const e = asRlhfError(new LibraryError('NOT_FOUND', 'no such model', 'model', 'check the path'));
  assert.ok(e instanceof RlhfError);
  assert.equal(e.describe(), 'model: no such model (check the path)');
  assert.equal(grpcStatusOf[e.code], 5);
  assert.equal(asRlhfError(new LibraryError('ENOENT', 'x')), null);
  assert.equal(asRlhfError('text'), null);
});

test('a user mistake exits 2 with one line; a bug exits 1 with its stack', () => {
  assert.deepEqual(formatError(new RlhfError('INVALID_ARGUMENT', 'bad', { field: '--x', fix: 'use y' })), {
    text: 'error: --x: bad (use y)',
    exitCode: 2,
  });
  const bug = formatError(new TypeError('boom'));
  assert.equal(bug.exitCode, 1);
  assert.match(bug.text, /TypeError: boom\n\s+at /);
});
