/** The OpenAI request bodies as GenerateRequests, and every malformed field refused with its parameter. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RlhfError } from '@rlhf/platform';
import { OpenAiError, openAiErrorOf, paramOfField } from './openai-error.js';
import { parseChatBody, parseCompletionBody } from './openai-request.js';

const refuses = (parse: (b: unknown) => unknown, body: unknown, param: string) =>
  assert.throws(
    () => parse(body),
    (e: unknown) => e instanceof OpenAiError && e.status === 400 && e.param === param,
    JSON.stringify(body),
  );

test('completion bodies: every prompt form, the sampling fields, and the RLHF flags', () => {
  const job = parseCompletionBody({
    model: 'policy',
    prompt: ['a', 'b'],
    n: 2,
    max_tokens: 5,
    temperature: 0.5,
    top_p: 0.9,
    top_k: -1,
    seed: 9,
    stop: 'x',
    stop_token_ids: [3],
    logprobs: 0,
    return_token_ids: true,
    return_tokens_as_token_ids: true,
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.deepEqual(job.request.prompts, ['a', 'b']);
  assert.deepEqual(job.request.sampling, {
    temperature: 0.5,
    topP: 0.9,
    topK: 0,
    maxNewTokens: 5,
    seed: 9,
    stop: ['x'],
    stopTokenIds: [3],
    greedy: false,
  });
  assert.deepEqual(
    [job.logprobs, job.returnTokenIds, job.tokensAsIds, job.stream, job.streamUsage, job.echo],
    [true, true, true, true, true, false],
  );
  assert.deepEqual(parseCompletionBody({ model: 'm', prompt: [1, 2] }).request.promptTokenIds, [
    { ids: [1, 2] },
  ]);
  assert.deepEqual(parseCompletionBody({ model: 'm', prompt: [[1], [2, 3]] }).request.promptTokenIds, [
    { ids: [1] },
    { ids: [2, 3] },
  ]);
  assert.equal(parseCompletionBody({ model: 'm', prompt: 'p', prompt_logprobs: 0 }).promptLogprobs, 0);
  assert.equal(parseCompletionBody({ model: 'm', prompt: 'p', prompt_logprobs: 5 }).promptLogprobs, 5);
  assert.equal(parseCompletionBody({ model: 'm', prompt: 'p' }).promptLogprobs, null);
  // logprobs: k asks k alternatives per token (vLLM's and OpenAI's limit: 20), with echo too.
  const top = parseCompletionBody({ model: 'm', prompt: 'p', logprobs: 20, echo: true });
  assert.deepEqual([top.logprobs, top.topLogprobs, top.echo], [true, 20, true]);
  assert.deepEqual([job.topLogprobs, parseCompletionBody({ model: 'm', prompt: 'p' }).logprobs], [0, false]);
  // OpenAI's default of 16 tokens; seed left to the service default.
  const plain = parseCompletionBody({ model: 'm', prompt: 'p' }).request.sampling;
  assert.equal(plain?.maxNewTokens, 16);
  assert.equal(plain?.seed, undefined);
});

test('completion bodies: malformed or unsupported fields name their parameter', () => {
  const ok = { model: 'm', prompt: 'p' };
  for (const [body, param] of [
    [{ ...ok, prompt: [] }, 'prompt'],
    [{ ...ok, prompt: ['a', 1] }, 'prompt'],
    [{ ...ok, prompt: [1.5] }, 'prompt'],
    [{ ...ok, prompt: [[1], 'a'] }, 'prompt'],
    [{ ...ok, n: 1.5 }, 'n'],
    [{ ...ok, max_tokens: 0 }, 'max_tokens'],
    [{ ...ok, seed: -1 }, 'seed'],
    [{ ...ok, seed: 2 ** 32 }, 'seed'],
    [{ ...ok, prompt_logprobs: 21 }, 'prompt_logprobs'],
    [{ ...ok, prompt_logprobs: -1 }, 'prompt_logprobs'],
    [{ ...ok, prompt_logprobs: 0, stream: true }, 'prompt_logprobs'],
    [{ ...ok, temperature: '1' }, 'temperature'],
    [{ ...ok, stop: [1] }, 'stop'],
    [{ ...ok, stop_token_ids: 'x' }, 'stop_token_ids'],
    [{ ...ok, echo: 'yes' }, 'echo'],
    [{ ...ok, echo: true, logprobs: 0, stream: true }, 'echo'],
    [{ ...ok, logprobs: 21 }, 'logprobs'],
    [{ ...ok, logprobs: 1.5 }, 'logprobs'],
    [{ ...ok, logprobs: true }, 'logprobs'],
    [{ ...ok, best_of: 3 }, 'best_of'],
    [{ ...ok, stream_options: { include_usage: true } }, 'stream_options'],
    [{ ...ok, stream: true, stream_options: { other: 1 } }, 'stream_options.other'],
    [{ ...ok, tools: [] }, 'tools'],
    [{ prompt: 'p' }, 'model'],
    [{ ...ok, model: 'x'.repeat(5000) }, 'model'],
    ['text', 'body'],
  ] as const)
    refuses(parseCompletionBody, body, param);
});

test('chat bodies: messages with text parts, max_completion_tokens, logprobs; bad ones named', () => {
  const job = parseChatBody({
    model: 'm',
    messages: [
      { role: 'system', content: 'be brief' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'hi ' },
          { type: 'text', text: 'there' },
        ],
      },
    ],
    max_completion_tokens: 7,
    logprobs: true,
    top_logprobs: 4,
  });
  assert.deepEqual(job.request.conversations, [
    {
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi there' },
      ],
    },
  ]);
  assert.equal(job.request.sampling?.maxNewTokens, 7);
  assert.deepEqual([job.logprobs, job.topLogprobs], [true, 4]);
  const ok = { model: 'm', messages: [{ role: 'user', content: 'x' }] };
  for (const [body, param] of [
    [{ ...ok, messages: [] }, 'messages'],
    [{ ...ok, messages: [{ content: 'x' }] }, 'messages[0]'],
    [{ ...ok, messages: [{ role: 'user', content: 'x', tool_calls: [] }] }, 'messages[0].tool_calls'],
    [{ ...ok, messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
    [{ ...ok, top_logprobs: 0 }, 'top_logprobs'],
    [{ ...ok, logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
    [{ ...ok, logprobs: 1 }, 'logprobs'],
    [{ ...ok, max_tokens: 3, max_completion_tokens: 3 }, 'max_completion_tokens'],
    [{ ...ok, echo: true }, 'echo'],
  ] as const)
    refuses(parseChatBody, body, param);
});

test('shared-check errors become OpenAI errors naming the request parameter; faults say only "internal error"', () => {
  assert.equal(paramOfField('sampling.top_p'), 'top_p');
  assert.equal(paramOfField('sampling.max_new_tokens'), 'max_tokens');
  assert.equal(paramOfField('prompts[3]'), 'prompt');
  assert.equal(paramOfField('prompt_token_ids[0]'), 'prompt');
  assert.equal(paramOfField('conversations[0].messages'), 'messages');
  assert.equal(paramOfField('model.uri'), 'model');
  const limit = openAiErrorOf(
    new RlhfError('RESOURCE_EXHAUSTED', 'too many', { field: 'sampling.max_new_tokens', fix: 'ask less' }),
  );
  assert.deepEqual(limit.body(), {
    error: {
      message: 'max_tokens: too many (ask less)',
      type: 'invalid_request_error',
      param: 'max_tokens',
      code: 'limit_exceeded',
    },
  });
  assert.equal(limit.status, 400);
  assert.equal(
    openAiErrorOf(new RlhfError('NOT_FOUND', 'no such model', { field: 'model.uri' })).status,
    404,
  );
  assert.equal(openAiErrorOf(new RlhfError('UNAVAILABLE', 'shutting down')).status, 503);
  for (const fault of [new Error('secret path /x/y'), new RlhfError('INTERNAL', 'ort blew up at /x')]) {
    const e = openAiErrorOf(fault);
    assert.equal(e.status, 500);
    assert.deepEqual(e.body(), {
      error: { message: 'internal error', type: 'server_error', param: null, code: null },
    });
  }
});
