import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RlhfError } from '../errors.js';
import { resolveSetting } from './env.js';
import { parseDuration, parseLogLevel, parseNatsUrl, parsePort } from './parse.js';

function rejects(fn: () => unknown, field: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof RlhfError);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(err.field, field);
    assert.match(err.describe(), pattern);
    return true;
  });
}

test('ports: integers 0..65535 only, named by the flag', () => {
  assert.equal(parsePort('0'), 0);
  assert.equal(parsePort(' 8080 '), 8080);
  rejects(() => parsePort('abc'), '--port', /--port: expected an integer, got "abc".*between 0 and 65535/);
  rejects(() => parsePort('70000'), '--port', /out of range/);
  rejects(() => parsePort('8.5', '--metrics-port'), '--metrics-port', /expected an integer/);
});

test('NATS URLs: known schemes, bare host:port, lists', () => {
  assert.equal(parseNatsUrl('127.0.0.1:4222'), 'nats://127.0.0.1:4222');
  assert.equal(parseNatsUrl('nats://a:1, tls://b:2'), 'nats://a:1,tls://b:2');
  rejects(() => parseNatsUrl('http://x:4222', 'NATS_URL'), 'NATS_URL', /unknown scheme "http".*nats:\/\//);
  rejects(() => parseNatsUrl(''), '--nats-url', /is empty/);
});

test('log levels and durations', () => {
  assert.equal(parseLogLevel('DEBUG'), 'debug');
  rejects(() => parseLogLevel('loud'), '--log-level', /one of trace/);
  assert.equal(parseDuration('500ms', 'x'), 500);
  assert.equal(parseDuration('2m', 'x'), 120_000);
  assert.equal(parseDuration('3', 'x'), 3000);
  rejects(() => parseDuration('soon', '--drain'), '--drain', /not a duration/);
});

test('a flag wins over the environment, and errors name the source used', () => {
  const setting = { flag: '--nats-url', env: 'NATS_URL', parse: parseNatsUrl };
  assert.equal(resolveSetting(setting, 'nats://f:1', { NATS_URL: 'nats://e:1' }), 'nats://f:1');
  assert.equal(resolveSetting(setting, undefined, { NATS_URL: 'nats://e:1' }), 'nats://e:1');
  assert.equal(resolveSetting(setting, undefined, {}), undefined);
  rejects(() => resolveSetting(setting, undefined, { NATS_URL: 'redis://x' }), 'NATS_URL', /unknown scheme/);
});
