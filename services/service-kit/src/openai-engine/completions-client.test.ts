import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { RlhfError } from '@rlhf/platform';
import { type CompletionJob, completionBody, servedSeed } from './completion-body.js';
import { requestAllCompletions, requestCompletions } from './completions-client.js';

type Handler = (body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler;
let url: string;
const seen: Array<Record<string, unknown>> = [];
const server = createServer((req, res) => {
  let text = '';
  req.on('data', (d: Buffer) => {
    text += d.toString();
  });
  req.on('end', () => {
    const body = JSON.parse(text) as Record<string, unknown>;
    seen.push({ ...body, authorization: req.headers.authorization, path: req.url });
    handler(body, req, res);
  });
});

before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const job: CompletionJob = {
  model: 'nats-obj://rlhf-artifacts/runs/default/r/iter-1/models/policy',
  promptIds: [1, 5, 6],
  n: 2,
  seed: servedSeed(3, 5),
  greedy: false,
  temperature: 0.7,
  topP: 0.9,
  topK: 0,
  maxTokens: 4,
  stop: [],
  stopTokenIds: [],
};
const vocab = { vocabSize: 50, endIds: new Set([2]) };

const choice = (index: number, ids: number[], reason = 'stop', lps = ids.map(() => -0.5)) => ({
  index,
  text: 'x',
  finish_reason: reason,
  token_ids: ids,
  logprobs: { tokens: ids.map((id) => `token_id:${id}`), token_logprobs: lps },
});
const send = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

test("a prompt's seed is the built-in stream key: seed ^ its global index", () => {
  assert.equal(servedSeed(3, 5), 6);
  assert.equal(servedSeed(0xffffffff, 1), 0xfffffffe);
  const body = completionBody({ ...job, greedy: true });
  assert.equal(body.temperature, 0);
  assert.equal(body.top_k, -1);
  assert.deepEqual(body.prompt, [1, 5, 6]);
  assert.equal(body.return_token_ids, true);
  assert.equal(body.logprobs, 0);
});

test('answers come back as the engine reads them: EOS told from a stop, choices by index', async () => {
  handler = (_b, _req, res) =>
    send(res, 200, { choices: [choice(1, [7, 8, 9, 10], 'length'), choice(0, [7, 2])] });
  seen.length = 0;
  const out = await requestCompletions({ url, apiKey: 'k-1' }, job, vocab);
  assert.deepEqual(out, [
    { tokenIds: [7, 2], logprobs: [-0.5, -0.5], finishReason: 'eos' },
    { tokenIds: [7, 8, 9, 10], logprobs: [-0.5, -0.5, -0.5, -0.5], finishReason: 'length' },
  ]);
  assert.equal(seen[0]?.authorization, 'Bearer k-1');
  assert.equal(seen[0]?.path, '/v1/completions');
  assert.equal(seen[0]?.seed, 6);
  assert.equal(seen[0]?.top_k, -1);
  handler = (_b, _req, res) => send(res, 200, { choices: [choice(0, [7, 3]), choice(1, [4])] });
  assert.equal((await requestCompletions({ url }, job, vocab))[0]?.finishReason, 'stop');
});

test('429, 5xx and dropped connections are retried with the same request; the answer is used', async () => {
  let calls = 0;
  handler = (_b, req, res) => {
    calls++;
    if (calls === 1) send(res, 429, { error: { message: 'slow down' } });
    else if (calls === 2) req.socket.destroy();
    else if (calls === 3) send(res, 503, { error: { message: 'loading' } });
    else send(res, 200, { choices: [choice(0, [3]), choice(1, [4])] });
  };
  seen.length = 0;
  const out = await requestCompletions({ url }, job, vocab, { backoffMs: 1 });
  assert.equal(calls, 4);
  assert.deepEqual(
    out.map((c) => c.tokenIds),
    [[3], [4]],
  );
  assert.ok(
    seen.every((b) => b.seed === 6 && JSON.stringify(b.prompt) === '[1,5,6]'),
    'the same request',
  );
});

test('a refusal fails at once naming the URL and the server message; endless 5xx gives up', async () => {
  handler = (_b, _req, res) => send(res, 404, { error: { message: 'model p not found' } });
  await assert.rejects(requestCompletions({ url }, job, vocab, { backoffMs: 1 }), (err: RlhfError) => {
    assert.match(err.message, new RegExp(`${url}/completions refused .*HTTP 404: model p not found`));
    assert.match(err.fix ?? '', /GET \/v1\/models/);
    return true;
  });
  handler = (_b, _req, res) => send(res, 401, { error: { message: 'bad key' } });
  await assert.rejects(requestCompletions({ url }, job, vocab), {
    code: 'PERMISSION_DENIED',
    field: 'OPENAI_API_KEY',
  });
  let calls = 0;
  handler = (_b, _req, res) => {
    calls++;
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('boom');
  };
  await assert.rejects(requestCompletions({ url }, job, vocab, { backoffMs: 1, attempts: 3 }), {
    code: 'UNAVAILABLE',
    message: /did not answer after 3 attempts: HTTP 500: boom/,
  });
  assert.equal(calls, 3);
});

test('hostile answers are refused: ids outside the vocabulary, wrong counts, bad log-probs', async () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ choices: [choice(0, [3])] }, /1 choices for n = 2/],
    [{ choices: [choice(0, [3]), choice(0, [4])] }, /index 0 appears twice/],
    [{ choices: [choice(0, [3]), choice(2, [4])] }, /index is 2/],
    [{ choices: [choice(0, [50]), choice(1, [4])] }, /not a token id of the policy \(vocabulary 50\)/],
    [{ choices: [choice(0, [-1]), choice(1, [4])] }, /not a token id/],
    [{ choices: [choice(0, [3, 4, 5, 6, 7]), choice(1, [4])] }, /5 tokens; max_tokens was 4/],
    [{ choices: [choice(0, [3], 'stop', [Number.NaN]), choice(1, [4])] }, /not a finite log-prob/],
    [{ choices: [choice(0, [3], 'stop', [0.5]), choice(1, [4])] }, /not a finite log-prob/],
    [{ choices: [choice(0, [3], 'stop', [-1, -1]), choice(1, [4])] }, /1 tokens but 2 log-probs/],
    [{ choices: [choice(0, [3], 'tool_calls'), choice(1, [4])] }, /finish_reason/],
    [{ choices: [{ ...choice(0, [3]), logprobs: null }, choice(1, [4])] }, /ignored logprobs/],
    [
      {
        choices: [
          { ...choice(0, [3]), logprobs: { tokens: ['token_id:4'], token_logprobs: [-1] } },
          choice(1, [4]),
        ],
      },
      /name different tokens/,
    ],
    [{ data: [] }, /no "choices" list/],
  ];
  for (const [body, message] of cases) {
    handler = (_b, _req, res) => send(res, 200, body);
    await assert.rejects(
      requestCompletions({ url }, job, vocab),
      { code: 'FAILED_PRECONDITION', message },
      String(message),
    );
  }
  // Without return_token_ids, the ids come from the token_id:<id> tokens.
  const { token_ids: _ids, ...noIds } = choice(0, [9]);
  handler = (_b, _req, res) => send(res, 200, { choices: [noIds, choice(1, [4])] });
  assert.deepEqual((await requestCompletions({ url }, job, vocab))[0]?.tokenIds, [9]);
});

test('many prompts: each its own request, answers in prompt order whatever order they finish in', async () => {
  handler = (b, _req, res) => {
    const first = (b.prompt as number[])[0] as number;
    setTimeout(() => send(res, 200, { choices: [choice(0, [first]), choice(1, [first])] }), 20 - first);
  };
  const jobs = [1, 2, 3, 4, 5].map((p) => ({ ...job, promptIds: [p] }));
  const out = await requestAllCompletions({ url }, jobs, vocab, { concurrency: 3 });
  assert.deepEqual(
    out.map((cs) => cs[0]?.tokenIds[0]),
    [1, 2, 3, 4, 5],
  );
});
