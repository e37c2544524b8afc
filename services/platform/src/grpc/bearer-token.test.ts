/** The server's token check: accepted and refused values, file rotation, and no token in any error text. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RlhfError } from '../errors.js';
import { checkBearer, readTokenFile, tokenFromFile, tokenFromValue } from './bearer-token.js';

const secret = 'c0ffee-5ecret-t0ken-0123456789abcdef';

test('checkBearer accepts exactly "Bearer <token>" and answers everything else UNAUTHENTICATED', () => {
  const source = tokenFromValue(secret, 'RLHF_AUTH_TOKEN');
  assert.equal(checkBearer([`Bearer ${secret}`], source), null);
  assert.equal(checkBearer([`bearer  ${secret} `], source), null, 'the scheme is case-insensitive');
  const refused: Array<[unknown[], RegExp]> = [
    [[], /carries no bearer token/],
    [[`Bearer ${secret}`, `Bearer ${secret}`], /more than one/],
    [[Buffer.from(`Bearer ${secret}`)], /not text/],
    [[secret], /not "Bearer <token>"/],
    [[`Basic ${secret}`], /not "Bearer <token>"/],
    [[`Bearer ${secret} extra`], /not "Bearer <token>"/],
    [[`Bearer ${secret.slice(0, -1)}`], /not the server's/],
    [[`Bearer ${secret}0`], /not the server's/],
    [['Bearer x'], /not the server's/],
  ];
  for (const [values, message] of refused) {
    const err = checkBearer(values, source);
    assert.ok(err instanceof RlhfError, String(values));
    assert.equal(err.code, 'UNAUTHENTICATED');
    assert.equal(err.field, 'authorization');
    assert.match(err.message, message);
    assert.match(err.describe(), /--auth-token-file/, 'the fix names the flag');
    assert.ok(!err.describe().includes(secret), 'the token is not in the error');
  }
});

test('a token file: read trimmed, refused when empty or unreadable, reread when rotated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rlhf-token-'));
  try {
    const file = join(dir, 'token');
    writeFileSync(file, `${secret}\n`);
    assert.equal(readTokenFile(file, '--auth-token-file'), secret);
    const source = tokenFromFile(file, '--auth-token-file', 0);
    assert.equal(checkBearer([`Bearer ${secret}`], source), null);
    writeFileSync(file, 'rotated-token\n');
    assert.match(checkBearer([`Bearer ${secret}`], source)?.message ?? '', /not the server's/);
    assert.equal(checkBearer(['Bearer rotated-token'], source), null);
    // A rotation caught half-written keeps the token in force.
    writeFileSync(file, '');
    assert.equal(checkBearer(['Bearer rotated-token'], source), null);

    const bad: Array<[string, RegExp]> = [
      ['', /holds no token/],
      ['two words', /spaces or non-ASCII/],
      ['tökén', /spaces or non-ASCII/],
    ];
    for (const [text, message] of bad) {
      writeFileSync(file, text);
      assert.throws(
        () => tokenFromFile(file),
        (e: unknown) => e instanceof RlhfError && e.field === '--auth-token-file' && message.test(e.message),
      );
    }
    writeFileSync(file, 'two secret-words');
    assert.throws(
      () => tokenFromFile(file),
      (e: unknown) => e instanceof RlhfError && !e.describe().includes('secret-words'),
    );
    assert.throws(
      () => tokenFromFile(join(dir, 'missing')),
      (e: unknown) => e instanceof RlhfError && /cannot read the token file/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
