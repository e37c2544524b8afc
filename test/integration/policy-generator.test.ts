/**
 * The policy-generator service in-process on loopback, with a real nats-server: Generate and GenerateStream
 * through the generated client on a tiny random-init policy (seeded and reproducible, prompt ids equal to
 * prompt text, greedy, stop strings and stop ids, shard-independent first_prompt_index), seeded results the
 * same alone or batched with concurrent calls, every bad input answered with its status and field while the
 * server keeps serving, a sharded GENERATE stage over NATS giving what one call gives, and a fault test: two
 * worker processes, one SIGKILLed mid-shard, and every prompt in the stage's output exactly once.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadModelDir, saveModelDir } from '@rlhf/ml-engine';
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  createLogger,
  type NatsConnection,
  openJetStream,
  publishWork,
  type RunningService,
  serveService,
  shardMsgId,
  startLocalNatsServer,
  workSubject,
} from '@rlhf/platform';
import {
  natsForTests,
  type ServiceProcess,
  startServiceProcess,
  type TestNats,
} from '@rlhf/platform/testing';
import { createPolicyGeneratorService } from '@rlhf/policy-generator';
import {
  type Completion,
  FailureReason,
  FinishReason,
  type GenerateRequest,
  GenerateRequest as GenerateRequestCodec,
  GenerateResponse,
  type GenerateStreamRequest,
  GenerateStreamRequest as GenerateStreamRequestCodec,
  type GenerateStreamResponse,
  PolicyGeneratorServiceClient,
  type SamplingParams,
  Stage,
  StageEvent,
  StageWork,
} from '@rlhf/proto';
import { parseGenerations, publishModelDir } from '@rlhf/service-kit';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { assertStatus, unaryCall } from '../helpers/grpc-calls.js';
import { baseModel } from '../helpers/judge-models.js';
import { recordRun } from '../helpers/run-record.js';
import { withTimeout } from '../helpers/timeout.js';

let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let service: RunningService;
let client: PolicyGeneratorServiceClient;
let policyDir: string;
let policyUri: string;
let rmUri: string;
const store = () => new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
const ACK_WAIT_MS = 3000;

before(async () => {
  nats = await natsForTests();
  nc = await connectNats({ url: nats.url, name: 'pg-test', logger: createLogger('test', { level: 'warn' }) });
  dir = await mkdtemp(join(tmpdir(), 'rlhf-pg-'));
  const stamp = Date.now();
  policyDir = await baseModel(dir, 'policy', 'lm', 5);
  policyUri = `nats-obj://rlhf-test-models/pg-policy-${stamp}`;
  await publishModelDir(store(), policyDir, policyUri);
  rmUri = `nats-obj://rlhf-test-models/pg-rm-${stamp}`;
  await publishModelDir(store(), await baseModel(dir, 'rm', 'scalar'), rmUri);
  service = await serveService(
    createPolicyGeneratorService({
      limits: { maxN: 16, maxCompletions: 64, maxNewTokens: 48, maxChars: 2000, maxPrompts: 32 },
      batching: { windowMs: 20, maxBatchCompletions: 64 },
      cacheDir: join(dir, 'cache'),
      ackWaitMs: ACK_WAIT_MS,
    }),
    {
      host: '127.0.0.1',
      port: 0,
      natsUrl: nats.url,
      logLevel: 'error',
      maxMessageBytes: 256 * 1024,
      artifactRoots: [dir],
    },
  );
  client = new PolicyGeneratorServiceClient(
    `127.0.0.1:${service.grpcPort}`,
    grpc.credentials.createInsecure(),
  );
});

after(async () => {
  client?.close();
  await service?.stop();
  await nc?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A request with only some fields set (the rest take their proto defaults). */
type Req = Omit<Partial<GenerateRequest>, 'sampling'> & { sampling?: Partial<SamplingParams> };
const encodeReq = (req: Req): GenerateRequest =>
  GenerateRequestCodec.fromPartial(req as Partial<GenerateRequest>);

const model = () => ({ uri: policyUri, revision: '', digest: '' });
const generateCall = (req: Req, deadlineMs = 30_000) =>
  unaryCall(client.generate.bind(client), encodeReq(req), deadlineMs);

function streamCall(req: Req): Promise<GenerateStreamResponse[]> {
  return new Promise((resolve, reject) => {
    const out: GenerateStreamResponse[] = [];
    const call = client.generateStream(
      GenerateStreamRequestCodec.fromPartial(req as Partial<GenerateStreamRequest>),
      {
        deadline: Date.now() + 30_000,
      },
    );
    call.on('data', (m: GenerateStreamResponse) => out.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });
}

/** Token ids, finish reason and text of each completion: what must be identical when seeded. */
const key = (c: Completion | undefined) => JSON.stringify([c?.tokenIds, c?.finishReason, c?.text]);
const keys = (res: GenerateResponse) => res.results.map((r) => r.completions.map(key));

const prompts = ['the film', 'the film was', 'the plot', 'the music was great .'];

test('Generate: n seeded completions per prompt with ids, log-probs and finish reasons; reproducible', async () => {
  const sampling = { seed: 3, maxNewTokens: 12 };
  const res = await generateCall({ model: model(), prompts, n: 3, sampling });
  assert.equal(res.results.length, prompts.length);
  const { tokenizer } = await loadModelDir(policyDir);
  res.results.forEach((r, i) => {
    assert.equal(r.promptIndex, i);
    assert.equal(r.prompt, prompts[i]);
    assert.equal(r.completions.length, 3);
    for (const c of r.completions) {
      assert.ok(c.tokenIds.length >= 1 && c.tokenIds.length <= 12);
      assert.equal(c.logprobs.length, c.tokenIds.length);
      assert.ok(c.logprobs.every((lp) => lp <= 0 && Number.isFinite(lp)));
      const eos = c.tokenIds.at(-1) === tokenizer.eosId;
      assert.equal(c.finishReason, eos ? FinishReason.FINISH_REASON_EOS : FinishReason.FINISH_REASON_LENGTH);
      if (!eos) assert.equal(c.tokenIds.length, 12);
      assert.equal(c.text, tokenizer.decode(eos ? c.tokenIds.slice(0, -1) : c.tokenIds));
    }
  });
  const again = await generateCall({ model: model(), prompts, n: 3, sampling });
  assert.deepEqual(keys(again), keys(res), 'same seed, same completions');
  const other = await generateCall({ model: model(), prompts, n: 3, sampling: { ...sampling, seed: 4 } });
  assert.notDeepEqual(keys(other), keys(res), 'another seed, other completions');

  // Prompt ids are used verbatim: the ids the tokenizer's own rule gives the text (BOS first for this
  // tokenizer) sample exactly what the text does; n unset means one sample.
  const ids = await generateCall({
    model: model(),
    promptTokenIds: prompts.map((p) => ({ ids: tokenizer.encode(p, { addSpecialTokens: true }) })),
    n: 3,
    sampling,
  });
  assert.deepEqual(keys(ids), keys(res));
  assert.deepEqual(
    ids.results.map((r) => r.prompt),
    prompts,
  );
  const one = await generateCall({ model: model(), prompts: ['the film'], sampling });
  assert.equal(one.results[0]?.completions.length, 1);
  assert.equal(key(one.results[0]?.completions[0]), key(res.results[0]?.completions[0]));

  // Random streams are keyed by the global prompt index: a later slice with first_prompt_index samples what
  // the whole list sampled for those prompts (how shards of a dataset stay independent of the sharding).
  const tail = await generateCall({
    model: model(),
    prompts: prompts.slice(2),
    n: 3,
    sampling,
    firstPromptIndex: 2,
  });
  assert.deepEqual(keys(tail), keys(res).slice(2));
  const unshifted = await generateCall({ model: model(), prompts: prompts.slice(2), n: 3, sampling });
  assert.notDeepEqual(keys(unshifted), keys(res).slice(2));

  // Greedy (or temperature 0): every sample is the likeliest continuation.
  for (const greedy of [{ greedy: true }, { temperature: 0 }]) {
    const g = await generateCall({
      model: model(),
      prompts: ['the film'],
      n: 3,
      sampling: { maxNewTokens: 12, ...greedy },
    });
    const [a, b, c] = g.results[0]?.completions ?? [];
    assert.ok(a && key(a) === key(b) && key(b) === key(c));
  }
});

test('Generate: stop strings cut the text before the match; stop token ids end with STOP and stay', async () => {
  const base = { model: model(), prompts: ['the film'], n: 1 };
  const full = (await generateCall({ ...base, sampling: { greedy: true, maxNewTokens: 24 } })).results[0]
    ?.completions[0] as Completion;
  assert.equal(full.finishReason, FinishReason.FINISH_REASON_LENGTH, 'the random policy rarely ends itself');
  assert.ok(full.text.length >= 6, `greedy text ${JSON.stringify(full.text)}`);
  // A stop string from the middle of the greedy text: the text ends right before its first occurrence.
  const stop = full.text.slice(Math.floor(full.text.length / 2), Math.floor(full.text.length / 2) + 2);
  const cut = (
    await generateCall({ ...base, sampling: { greedy: true, maxNewTokens: 24, stop: ['', stop] } })
  ).results[0]?.completions[0] as Completion;
  assert.equal(cut.finishReason, FinishReason.FINISH_REASON_STOP);
  assert.equal(cut.text, full.text.slice(0, full.text.indexOf(stop)));
  assert.ok(cut.tokenIds.length < full.tokenIds.length);
  assert.deepEqual(cut.tokenIds, full.tokenIds.slice(0, cut.tokenIds.length), 'the tokens up to the match');
  assert.equal(cut.logprobs.length, cut.tokenIds.length);
  // A stop token id: the completion ends at its first occurrence, the token kept.
  const stopId = full.tokenIds[3] as number;
  const at = full.tokenIds.indexOf(stopId);
  const byId = (
    await generateCall({ ...base, sampling: { greedy: true, maxNewTokens: 24, stopTokenIds: [stopId] } })
  ).results[0]?.completions[0] as Completion;
  assert.equal(byId.finishReason, FinishReason.FINISH_REASON_STOP);
  assert.deepEqual(byId.tokenIds, full.tokenIds.slice(0, at + 1));
});

test("Generate: conversations go through the model's chat template, and sample what their text samples", async () => {
  const template =
    "{{ bos_token }}{% for m in messages %}{% if m.role not in ['system', 'user', 'assistant'] %}" +
    "{{ raise_exception('no role ' + m.role) }}{% endif %}[{{ m.role }}] {{ m.content }}\n{% endfor %}" +
    '{% if add_generation_prompt %}[assistant]{% endif %}';
  const chatDir = join(dir, 'chat-policy');
  await saveModelDir(chatDir, { ...(await loadModelDir(policyDir)), chatTemplate: template });
  const chatModel = { uri: `file://${chatDir}`, revision: '', digest: '' };
  const conversations = [
    { messages: [{ role: 'user', content: 'the film' }] },
    {
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'the plot' },
      ],
    },
  ];
  const sampling = { seed: 7, maxNewTokens: 8 };
  const chat = await generateCall({ model: chatModel, conversations, n: 2, sampling });
  const rendered = ['[user] the film\n[assistant]', '[system] be brief\n[user] the plot\n[assistant]'];
  assert.deepEqual(
    chat.results.map((r) => r.prompt),
    rendered,
  );
  const text = await generateCall({ model: chatModel, prompts: rendered, n: 2, sampling });
  assert.deepEqual(keys(chat), keys(text), 'a conversation samples what its rendered text samples');
  // A model without a template: the contents, one per line.
  const plain = await generateCall({ model: model(), conversations, sampling });
  assert.deepEqual(
    plain.results.map((r) => r.prompt),
    ['the film', 'be brief\nthe plot'],
  );
  const { INVALID_ARGUMENT } = grpc.status;
  await assertStatus(
    generateCall({ model: chatModel, prompts: ['x'], conversations }),
    INVALID_ARGUMENT,
    'conversations',
    'prompts and conversations',
  );
  await assertStatus(
    generateCall({ model: chatModel, conversations: [{ messages: [] }] }),
    INVALID_ARGUMENT,
    'conversations[0].messages',
    'an empty conversation',
  );
  await assertStatus(
    generateCall({
      model: chatModel,
      conversations: [
        conversations[0] as (typeof conversations)[number],
        { messages: [{ role: 'tool', content: 'x' }] },
      ],
      sampling,
    }),
    INVALID_ARGUMENT,
    'conversations[1]',
    'a role the template refuses',
  );
});

test('GenerateStream: one message per completion as it finishes; the same set as Generate', async () => {
  const req = { model: model(), prompts, n: 3, sampling: { seed: 9, maxNewTokens: 10 } };
  const [whole, streamed] = await Promise.all([generateCall(req), streamCall(req)]);
  assert.equal(streamed.length, prompts.length * 3);
  const seen = new Set(streamed.map((m) => `${m.promptIndex}/${m.sampleIndex}`));
  assert.equal(seen.size, streamed.length, 'each (prompt, sample) once');
  for (const m of streamed)
    assert.equal(key(m.completion), key(whole.results[m.promptIndex]?.completions[m.sampleIndex]));
  // A bad request fails the stream with its status.
  await assertStatus(
    streamCall({ model: model(), prompts: [] }),
    grpc.status.INVALID_ARGUMENT,
    'prompts',
    'stream',
  );
});

/** Decode steps so far, and how many of them served a single request, from the service's metrics. */
async function batchStats(): Promise<{ steps: number; singles: number; tokens: number }> {
  const registry = service.context.metrics;
  const metric = await registry.getSingleMetric('rlhf_generate_batch_requests')?.get();
  let steps = 0;
  let singles = 0;
  for (const v of (metric?.values ?? []) as Array<{
    metricName?: string;
    labels: { le?: number | string };
    value: number;
  }>) {
    if (v.metricName === 'rlhf_generate_batch_requests_count') steps = v.value;
    if (v.metricName === 'rlhf_generate_batch_requests_bucket' && v.labels.le === 1) singles = v.value;
  }
  const tokens = (await registry.getSingleMetric('rlhf_generate_tokens_total')?.get())?.values[0]?.value ?? 0;
  return { steps, singles, tokens };
}

test('dynamic batching: a seeded request gives the same completions alone and batched with others', async () => {
  const mine = {
    model: model(),
    prompts: ['the plot', 'the film was'],
    n: 4,
    sampling: { seed: 21, maxNewTokens: 16, topP: 0.9 },
  };
  const alone = await generateCall(mine);
  const before = await batchStats();
  const others = Array.from({ length: 6 }, (_, k) =>
    generateCall({
      model: model(),
      prompts: [prompts[k % prompts.length] as string, 'the music'],
      n: 1 + (k % 3),
      sampling: { seed: 100 + k, temperature: 0.5 + k / 4, maxNewTokens: 6 + 3 * k, topK: k * 10 },
    }),
  );
  const [batched] = await Promise.all([generateCall(mine), ...others]);
  const after = await batchStats();
  assert.deepEqual(keys(batched), keys(alone), 'tokens, text and finish reasons do not depend on batching');
  for (const [i, r] of batched.results.entries()) {
    for (const [j, c] of r.completions.entries()) {
      for (const [t, lp] of c.logprobs.entries()) {
        const want = alone.results[i]?.completions[j]?.logprobs[t] as number;
        assert.ok(Math.abs(lp - want) < 1e-4, `log-prob ${lp} vs ${want}`);
      }
    }
  }
  const steps = after.steps - before.steps;
  assert.ok(steps > 0);
  assert.ok(steps > after.singles - before.singles, 'some decode step served several calls');
  assert.ok(after.tokens > before.tokens, 'tokens counted');
});

test('bad input gets its status and names the field; the server keeps serving', async () => {
  const { INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, RESOURCE_EXHAUSTED } = grpc.status;
  const m = model();
  const ok = { model: m, prompts: ['the film'] };
  const cases: Array<[string, Req, grpc.status, string]> = [
    ['no model', { prompts: ['x'] }, INVALID_ARGUMENT, 'model.uri'],
    ['no prompts', { model: m, prompts: [] }, INVALID_ARGUMENT, 'prompts'],
    ['text and ids', { ...ok, promptTokenIds: [{ ids: [5] }] }, INVALID_ARGUMENT, 'prompt_token_ids'],
    ['n = 0 (unset means 1; zero samples is a mistake)', { ...ok, n: 0 }, INVALID_ARGUMENT, 'n'],
    ['n above the proto range', { ...ok, n: 1025 }, INVALID_ARGUMENT, 'n'],
    ['n above the server limit', { ...ok, n: 17 }, RESOURCE_EXHAUSTED, 'n'],
    [
      'negative temperature',
      { ...ok, sampling: { temperature: -0.5 } },
      INVALID_ARGUMENT,
      'sampling.temperature',
    ],
    [
      'NaN temperature',
      { ...ok, sampling: { temperature: Number.NaN } },
      INVALID_ARGUMENT,
      'sampling.temperature',
    ],
    ['top_p 0', { ...ok, sampling: { topP: 0 } }, INVALID_ARGUMENT, 'sampling.top_p'],
    ['top_p above 1', { ...ok, sampling: { topP: 1.5 } }, INVALID_ARGUMENT, 'sampling.top_p'],
    [
      'max_new_tokens 0',
      { ...ok, sampling: { maxNewTokens: 0 } },
      INVALID_ARGUMENT,
      'sampling.max_new_tokens',
    ],
    [
      'bad scheme',
      { ...ok, model: { uri: 's3://x/y', revision: '', digest: '' } },
      INVALID_ARGUMENT,
      'model.uri',
    ],
    [
      'unknown model',
      { ...ok, model: { uri: 'nats-obj://rlhf-test-models/missing', revision: '', digest: '' } },
      NOT_FOUND,
      'model.uri',
    ],
    [
      'unknown file model',
      { ...ok, model: { uri: `file://${dir}/missing`, revision: '', digest: '' } },
      NOT_FOUND,
      'model.uri',
    ],
    [
      'reward model as policy',
      { ...ok, model: { uri: rmUri, revision: '', digest: '' } },
      FAILED_PRECONDITION,
      'model.uri',
    ],
    [
      'stale digest pin',
      { ...ok, model: { ...m, digest: 'SHA-256=AAAA' } },
      FAILED_PRECONDITION,
      'model.digest',
    ],
    [
      'prompts x n over the limit',
      { model: m, prompts: Array(5).fill('x'), n: 16 },
      RESOURCE_EXHAUSTED,
      'prompts',
    ],
    ['too many prompts', { model: m, prompts: Array(33).fill('x') }, RESOURCE_EXHAUSTED, 'prompts'],
    [
      'max_new_tokens over the limit',
      { ...ok, sampling: { maxNewTokens: 49 } },
      RESOURCE_EXHAUSTED,
      'sampling.max_new_tokens',
    ],
    ['prompt too long', { model: m, prompts: ['x', 'y'.repeat(2001)] }, RESOURCE_EXHAUSTED, 'prompts[1]'],
    [
      'prompt + max_new_tokens beyond the positions',
      { model: m, prompts: ['the film', 'the film was great . '.repeat(8)], sampling: { maxNewTokens: 40 } },
      INVALID_ARGUMENT,
      'prompts[1]',
    ],
    [
      'token id outside the vocabulary',
      { model: m, promptTokenIds: [{ ids: [5] }, { ids: [7, 300] }] },
      INVALID_ARGUMENT,
      'prompt_token_ids[1]',
    ],
    [
      'stop id outside the vocabulary',
      { ...ok, sampling: { stopTokenIds: [999] } },
      INVALID_ARGUMENT,
      'sampling.stop_token_ids[0]',
    ],
  ];
  for (const [label, req, code, field] of cases) await assertStatus(generateCall(req), code, field, label);

  // max_new_tokens the model's 64 positions can never hold, on a server whose own limit is higher.
  const roomy = await serveService(createPolicyGeneratorService({ cacheDir: join(dir, 'cache') }), {
    host: '127.0.0.1',
    port: 0,
    natsUrl: nats.url,
    logLevel: 'error',
    artifactRoots: [dir],
  });
  const roomyClient = new PolicyGeneratorServiceClient(
    `127.0.0.1:${roomy.grpcPort}`,
    grpc.credentials.createInsecure(),
  );
  try {
    await assertStatus(
      unaryCall(roomyClient.generate.bind(roomyClient), encodeReq({ ...ok, sampling: { maxNewTokens: 64 } })),
      RESOURCE_EXHAUSTED,
      'sampling.max_new_tokens',
      'beyond the model positions',
    );
  } finally {
    roomyClient.close();
    await roomy.stop();
  }

  // Invalid UTF-8 cannot be written through the typed client: patch the encoded bytes. The check reads the
  // raw bytes, so a prompt that really holds U+FFFD is still accepted.
  const rawCall = (req: Req, marker: string): Promise<GenerateResponse> => {
    const bytes = Buffer.from(GenerateRequestCodec.encode(encodeReq(req)).finish());
    const at = bytes.indexOf(marker);
    if (at >= 0) {
      bytes[at] = 0xff;
      bytes[at + 1] = 0xfe;
    }
    return new Promise((resolve, reject) =>
      client.makeUnaryRequest(
        '/rlhf.v1.PolicyGeneratorService/Generate',
        (b: Buffer) => b,
        (b: Buffer) => GenerateResponse.decode(b),
        bytes,
        (err, res) => (err ? reject(err) : resolve(res as GenerateResponse)),
      ),
    );
  };
  await assertStatus(
    rawCall({ model: m, prompts: ['fine', 'the XX film'] }, 'XX'),
    INVALID_ARGUMENT,
    'prompts[1]',
    'invalid UTF-8 prompt',
  );
  await assertStatus(
    rawCall({ ...ok, sampling: { stop: ['QQ'] } }, 'QQ'),
    INVALID_ARGUMENT,
    'sampling.stop[0]',
    'invalid UTF-8 stop',
  );
  await assertStatus(
    rawCall({ model: m, conversations: [{ messages: [{ role: 'user', content: 'the ZZ film' }] }] }, 'ZZ'),
    INVALID_ARGUMENT,
    'conversations[0].messages[0].content',
    'invalid UTF-8 message',
  );
  const replacement = await rawCall({ model: m, prompts: ['the film \uFFFD'] }, 'no marker');
  assert.equal(replacement.results[0]?.prompt, 'the film \uFFFD', 'a real U+FFFD is text');

  // Over the server's message size limit (256 KiB here): gRPC itself refuses it.
  await assertStatus(
    generateCall({ model: m, prompts: Array.from({ length: 30 }, () => 'z'.repeat(9000)) }),
    RESOURCE_EXHAUSTED,
    null,
    'message size',
  );

  const still = await generateCall({ ...ok, n: 2 });
  assert.equal(still.results[0]?.completions.length, 2, 'still serving');
});

test('a call whose deadline passes while queued is dropped with DEADLINE_EXCEEDED; the server keeps serving', async () => {
  const big = { model: model(), prompts: Array(4).fill('the film'), n: 16, sampling: { maxNewTokens: 40 } };
  const busy = Array.from({ length: 4 }, () => generateCall(big));
  await assertStatus(
    generateCall({ model: model(), prompts: ['the plot'] }, 30),
    grpc.status.DEADLINE_EXCEEDED,
    null,
    'deadline',
  );
  await Promise.all(busy);
  const ok = await generateCall({ model: model(), prompts: ['the plot'] });
  assert.equal(ok.results.length, 1);
});

const encodeRows = (rows: object[]) =>
  new TextEncoder().encode(`${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);

interface GenRecord {
  prompt: string;
  responses: string[];
  response_ids: number[][];
  logprobs: number[][];
  finish_reasons: string[];
  id: number;
}

function generateWork(o: {
  run: string;
  shard: number;
  shards: number;
  input: string;
  output: string;
  first: number;
  policy: string;
  n: number;
  sampling: Partial<SamplingParams>;
}) {
  return StageWork.fromPartial({
    key: { namespace: 'default', run: o.run, iteration: 1, stage: Stage.STAGE_GENERATE },
    shardIndex: o.shard,
    shardCount: o.shards,
    inputUri: o.input,
    outputUri: o.output,
    firstRowIndex: o.first,
    params: {
      $case: 'generate',
      value: {
        policy: { uri: o.policy, revision: '', digest: '' },
        n: o.n,
        sampling: o.sampling as SamplingParams,
      },
    },
  });
}

test('GENERATE stage over NATS: shards give what one call gives, in the JUDGE input format; bad input is terminated', async () => {
  const run = `pg-gen-${Date.now()}`;
  await recordRun(nc, run);
  const s = store();
  const prefix = `nats-obj://rlhf-artifacts/runs/default/${run}/iter-1`;
  const all = Array.from({ length: 7 }, (_, i) => ({ prompt: `${prompts[i % 4]} ${i}`, id: i }));
  const { tokenizer } = await loadModelDir(policyDir);
  // One row as ids, one as chat messages and one as TRL's conversational prompt: all are prompts too.
  const chat = (content: string) => [{ role: 'user', content }];
  const rows: object[] = all.map((r, i) =>
    i === 3
      ? { prompt_ids: tokenizer.encode(r.prompt), id: r.id }
      : i === 5
        ? { messages: chat(r.prompt), id: r.id }
        : i === 6
          ? { prompt: chat(r.prompt), id: r.id }
          : r,
  );
  const shards = [rows.slice(0, 3), rows.slice(3, 5), rows.slice(5)];
  const firsts = [0, 3, 5];
  for (const [i, part] of shards.entries())
    await s.put(`${prefix}/prompts/shard-${i}.jsonl`, encodeRows(part));
  // The last shard as Parquet instead, one nullable column per field, as `datasets` writes mixed rows.
  const last = shards[2] as Array<Record<string, unknown>>;
  const columnData = ['prompt', 'messages', 'id'].map((name) => ({
    name,
    data: last.map((r) => r[name] ?? null) as never,
  }));
  await s.put(`${prefix}/prompts/shard-2.jsonl`, new Uint8Array(parquetWriteBuffer({ columnData })));
  await s.put(`${prefix}/prompts/bad.jsonl`, new TextEncoder().encode('{"prompt": "ok"}\n{"text": 5}\n'));
  const sampling = { seed: 17, maxNewTokens: 10 };

  const events: StageEvent[] = [];
  const sub = nc.subscribe(`rlhf.events.default.${run}.>`);
  const done = (async () => {
    for await (const m of sub) {
      events.push(StageEvent.decode(m.data));
      const finished = events.filter((e) => e.event?.$case === 'shardDone' || e.event?.$case === 'failed');
      if (finished.length >= 4) break;
    }
  })();
  const { js } = await openJetStream(nc);
  const publish = (shard: number, input: string, first: number) =>
    publishWork(
      js,
      workSubject('default', 'generate', run, 1),
      StageWork.encode(
        generateWork({
          run,
          shard,
          shards: 4,
          input,
          output: `${prefix}/generate/shard-${shard}.jsonl`,
          first,
          policy: policyUri,
          n: 3,
          sampling,
        }),
      ).finish(),
      shardMsgId('default', 'generate', run, 1, shard),
    );
  for (const [i] of shards.entries())
    await publish(i, `${prefix}/prompts/shard-${i}.jsonl`, firsts[i] as number);
  await publish(3, `${prefix}/prompts/bad.jsonl`, 7);
  await withTimeout(done, 30_000, () => `events so far: ${JSON.stringify(events)}`);
  sub.unsubscribe();

  const failed = events.find((e) => e.event?.$case === 'failed');
  assert.ok(failed?.event?.$case === 'failed');
  assert.equal(failed.event.value.shardIndex, 3);
  assert.equal(failed.event.value.reason, FailureReason.FAILURE_REASON_INVALID_INPUT);
  assert.equal(failed.event.value.retryable, false);
  assert.match(failed.event.value.message, /bad\.jsonl:2/, 'the failure names the line');
  for (const shard of [0, 1, 2]) {
    assert.ok(
      events.some((e) => e.event?.$case === 'progress' && e.event.value.shardIndex === shard),
      `progress of shard ${shard}`,
    );
  }

  // The whole list in one call, with the same seed: each prompt's responses do not depend on the sharding.
  const whole = await generateCall({ model: model(), prompts: all.map((r) => r.prompt), n: 3, sampling });
  const records: GenRecord[] = [];
  for (const i of [0, 1, 2]) {
    const data = await s.get(`${prefix}/generate/shard-${i}.jsonl`);
    const parsed = await parseGenerations(data, `shard-${i}`); // what the JUDGE workers read
    assert.equal(parsed.length, (shards[i] as object[]).length);
    records.push(...parsed.map((p) => p.raw as unknown as GenRecord));
  }
  assert.deepEqual(
    records.map((r) => r.id),
    all.map((r) => r.id),
    'every prompt once, in order, extra fields kept',
  );
  // A conversational prompt is written as its messages, for the judge's template, beside the rendered text.
  assert.deepEqual(
    (records[6] as GenRecord & { messages?: unknown }).messages,
    chat(all[6]?.prompt as string),
  );
  records.forEach((r, i) => {
    const want = whole.results[i];
    assert.equal(r.prompt, all[i]?.prompt);
    assert.deepEqual(
      r.responses,
      want?.completions.map((c) => c.text),
    );
    assert.deepEqual(
      r.response_ids,
      want?.completions.map((c) => c.tokenIds),
    );
    assert.equal(r.logprobs.length, 3);
    for (const [j, lps] of r.logprobs.entries()) assert.equal(lps.length, r.response_ids[j]?.length);
    assert.deepEqual(
      r.finish_reasons,
      want?.completions.map((c) => (c.finishReason === FinishReason.FINISH_REASON_EOS ? 'eos' : 'length')),
    );
  });
});

const mainTs = fileURLToPath(new URL('../../services/policy-generator/src/main.ts', import.meta.url));

type Worker = ServiceProcess;

/** `services/policy-generator/src/main.ts` as its own process, a GENERATE worker on `natsUrl`. */
function startWorker(natsUrl: string, cacheDir: string): Promise<Worker> {
  const started = startServiceProcess(mainTs, {
    metrics: false,
    artifactRoots: [dir],
    env: {
      NATS_URL: natsUrl,
      RLHF_MODEL_CACHE: cacheDir,
      RLHF_WORK_ACK_WAIT_MS: String(ACK_WAIT_MS),
      // One completion per pass: slow shards, so the kill lands mid-shard (the output does not change).
      RLHF_GENERATE_MAX_BATCH: '1',
    },
  });
  return withTimeout(started, 60_000, () => 'worker start');
}

test('fault: two worker processes, one SIGKILLed mid-shard; the stage output holds every prompt exactly once', async () => {
  // A nats-server of its own: its work consumer is created by these workers, with their short ack wait,
  // and no other GENERATE worker (the in-process service above) takes these shards.
  const server = await startLocalNatsServer();
  const conn = await connectNats({
    url: server.url,
    name: 'pg-fault',
    logger: createLogger('test', { level: 'warn' }),
  });
  const workers: Worker[] = [];
  try {
    const s = new ArtifactRouter(conn, ArtifactSandbox.unrestricted());
    const run = `pg-fault-${Date.now()}`;
    await recordRun(conn, run);
    const prefix = `nats-obj://rlhf-artifacts/runs/default/${run}/iter-1`;
    const SHARDS = 6;
    const PER = 6;
    const N = 4;
    for (let i = 0; i < SHARDS; i++) {
      const rows = Array.from({ length: PER }, (_, k) => ({
        prompt: `${prompts[k % 4]} ${i * PER + k}`,
        id: i * PER + k,
      }));
      await s.put(`${prefix}/prompts/shard-${i}.jsonl`, encodeRows(rows));
    }
    const { js } = await openJetStream(conn);
    const publishAll = async () => {
      for (let i = 0; i < SHARDS; i++) {
        await publishWork(
          js,
          workSubject('default', 'generate', run, 1),
          StageWork.encode(
            generateWork({
              run,
              shard: i,
              shards: SHARDS,
              input: `${prefix}/prompts/shard-${i}.jsonl`,
              output: `${prefix}/generate/shard-${i}.jsonl`,
              first: i * PER,
              policy: `file://${policyDir}`,
              n: N,
              sampling: { seed: 5, maxNewTokens: 24 },
            }),
          ).finish(),
          shardMsgId('default', 'generate', run, 1, i),
        );
      }
    };

    const events: StageEvent[] = [];
    const sub = conn.subscribe(`rlhf.events.default.${run}.>`);
    let victim: { pid: number; shard: number } | null = null;
    const byPid = new Map<number, Worker>();
    const doneShards = new Set<number>();
    const finished = (async () => {
      for await (const m of sub) {
        const e = StageEvent.decode(m.data);
        events.push(e);
        const ev = e.event;
        if (
          ev?.$case === 'progress' &&
          victim === null &&
          ev.value.done >= 1 &&
          ev.value.done < ev.value.total
        ) {
          // The worker of this shard is mid-shard: find it by the pid in its `started` event, and kill it.
          const started = events.find(
            (x) => x.event?.$case === 'started' && x.event.value.shardIndex === ev.value.shardIndex,
          );
          const pid =
            started?.event?.$case === 'started' ? Number(started.event.value.worker.split('-').at(-1)) : NaN;
          const w = byPid.get(pid);
          if (w) {
            victim = { pid, shard: ev.value.shardIndex };
            w.child.kill('SIGKILL');
          }
        }
        if (ev?.$case === 'shardDone') doneShards.add(ev.value.shardIndex);
        if (doneShards.size === SHARDS) break;
      }
    })();

    for (let k = 0; k < 2; k++) {
      const w = await startWorker(server.url, join(dir, `fault-cache-${k}`));
      byPid.set(w.child.pid as number, w);
      workers.push(w);
    }
    await publishAll();
    await withTimeout(finished, 60_000, () => `events so far: ${JSON.stringify(events.map((e) => e.event))}`);
    sub.unsubscribe();

    assert.ok(victim, 'a worker was killed mid-shard');
    const { pid, shard } = victim as { pid: number; shard: number };
    const killed = byPid.get(pid) as Worker;
    assert.equal(await killed.exited, null, 'SIGKILLed');
    // The killed shard was started again (redelivered after the ack wait) and finished by the survivor.
    const starts = events.filter((e) => e.event?.$case === 'started' && e.event.value.shardIndex === shard);
    assert.ok(starts.length >= 2, `shard ${shard} started ${starts.length} times`);
    const doneBy = events.filter((e) => e.event?.$case === 'shardDone' && e.event.value.shardIndex === shard);
    assert.ok(doneBy.length >= 1);

    // The stage's output: every prompt exactly once, each with n responses, as a clean run would write it.
    const ids: number[] = [];
    for (let i = 0; i < SHARDS; i++) {
      const recs = await parseGenerations(await s.get(`${prefix}/generate/shard-${i}.jsonl`), `shard-${i}`);
      assert.equal(recs.length, PER, `shard ${i} has all its prompts`);
      for (const r of recs) {
        assert.equal(r.responses.length, N);
        ids.push((r.raw as { id: number }).id);
      }
    }
    assert.deepEqual(
      ids,
      Array.from({ length: SHARDS * PER }, (_, i) => i),
    );

    // The survivor drains on SIGTERM and exits 0.
    const survivor = workers.find((w) => w.child.pid !== pid) as Worker;
    survivor.child.kill('SIGTERM');
    assert.equal(await survivor.exited, 0);
  } finally {
    for (const w of workers)
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await conn.close();
    await server.stop();
  }
});
