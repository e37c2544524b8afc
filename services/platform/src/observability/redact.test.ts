import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nkeys } from '@nats-io/transport-node';
import { redact } from './redact.js';

test('URL passwords and tokens are masked, the user and host stay', () => {
  assert.equal(
    redact('cannot reach nats://alice:s3cr%40t@nats:4222,tls://tok123@b:4222 now'),
    'cannot reach nats://alice:***@nats:4222,tls://***@b:4222 now',
  );
  assert.equal(redact('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222');
});

test('NKey seeds, JWTs and known secret values are masked', () => {
  const seed = new TextDecoder().decode(nkeys.createUser().getSeed());
  const jwt = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVQUJDIn0.c2lnbmF0dXJl';
  const out = redact(`seed ${seed} jwt ${jwt} pw hunter22 end`, ['hunter22', undefined, 'ab']);
  assert.ok(!out.includes(seed) && !out.includes(jwt) && !out.includes('hunter22'), out);
  assert.match(out, /^seed SU\*\*\* jwt <jwt \*\*\*> pw \*\*\* end$/);
});
