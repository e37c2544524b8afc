import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkOpenAiEngine } from './served-sampling.js';

test("a shard's server is checked: http(s) only, no credentials in the URL; unset means built in", () => {
  assert.equal(checkOpenAiEngine(undefined, 'generate.openai'), null);
  const ok = { url: 'http://gen.team-a:8000/v1', model: '' };
  assert.equal(checkOpenAiEngine(ok, 'generate.openai'), ok);
  assert.throws(() => checkOpenAiEngine({ url: 'not a url', model: '' }, 'generate.openai'), {
    field: 'generate.openai.url',
    message: /is not a URL/,
  });
  assert.throws(() => checkOpenAiEngine({ url: 'file:///etc/passwd', model: '' }, 'evaluate.openai'), {
    field: 'evaluate.openai.url',
    message: /must be http or https, got file:/,
  });
  assert.throws(() => checkOpenAiEngine({ url: 'http://u:p@gen/v1', model: '' }, 'generate.openai'), {
    field: 'generate.openai.url',
    message: /must not carry credentials/,
  });
  assert.throws(
    () => checkOpenAiEngine({ url: 'http://gen/v1', model: 'x'.repeat(4097) }, 'generate.openai'),
    {
      field: 'generate.openai.model',
    },
  );
});
