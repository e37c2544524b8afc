/**
 * The reward-model service in-process on loopback, with a real nats-server: Score through the generated
 * client on a freshly trained tiny RM (good reviews above bad, the length penalty, dynamic batching giving
 * the same numbers as one big call), every bad input answered with its status and field while the server
 * keeps serving, and a sharded JUDGE stage processed over NATS.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
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
  workSubject,
} from '@rlhf/platform';
import { natsForTests, type TestNats } from '@rlhf/platform/testing';
import {
  FailureReason,
  JudgeType,
  RewardModelServiceClient,
  type ScoreRequest,
  ScoreRequest as ScoreRequestCodec,
  ScoreResponse,
  Stage,
  StageEvent,
  StageWork,
} from '@rlhf/proto';
import { createRewardModelService } from '@rlhf/reward-model';
import { publishModelDir } from '@rlhf/service-kit';
import { assertStatus, unaryCall } from '../helpers/grpc-calls.js';
import { baseModel, trainedJudge } from '../helpers/judge-models.js';
import { recordRun } from '../helpers/run-record.js';
import { withTimeout } from '../helpers/timeout.js';

let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let service: RunningService;
let client: RewardModelServiceClient;
let rmUri: string;
let rmDir: string;
let policyUri: string;
const store = () => new ArtifactRouter(nc, ArtifactSandbox.unrestricted());

before(async () => {
  nats = await natsForTests();
  nc = await connectNats({ url: nats.url, name: 'rm-test', logger: createLogger('test', { level: 'warn' }) });
  dir = await mkdtemp(join(tmpdir(), 'rlhf-rm-'));
  const stamp = Date.now();
  rmDir = await trainedJudge(dir, 'rm');
  rmUri = `nats-obj://rlhf-test-models/rm-${stamp}`;
  await publishModelDir(store(), rmDir, rmUri);
  policyUri = `nats-obj://rlhf-test-models/policy-${stamp}`;
  await publishModelDir(store(), await baseModel(dir, 'policy', 'lm'), policyUri);
  service = await serveService(
    createRewardModelService({ limits: { maxResponses: 64, maxChars: 2000 }, cacheDir: join(dir, 'cache') }),
    {
      host: '127.0.0.1',
      port: 0,
      natsUrl: nats.url,
      logLevel: 'error',
      maxMessageBytes: 256 * 1024,
      artifactRoots: [dir],
    },
  );
  client = new RewardModelServiceClient(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure());
});

after(async () => {
  client?.close();
  await service?.stop();
  await nc?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

const score = (req: Partial<ScoreRequest>) =>
  unaryCall(client.score.bind(client), ScoreRequestCodec.fromPartial(req));

const reviews = [' was great .', ' was awful .', ' was superb .', ' was dull .'];

test('Score: good reviews above bad, penalised = reward - lambda * chars, lengths in code points', async () => {
  const res = await score({
    model: { uri: rmUri, revision: '', digest: '' },
    items: [
      { prompt: 'the film', responses: reviews },
      { prompt: 'the film', responses: [' was lovely . é'] },
    ],
    lengthPenalty: 0.01,
  });
  assert.equal(res.results.length, 2);
  const [first, second] = res.results;
  assert.ok(first && second);
  const [g1, b1, g2, b2] = first.rewards as [number, number, number, number];
  assert.ok(Math.min(g1, g2) > Math.max(b1, b2), `rewards ${first.rewards.join(', ')}`);
  assert.deepEqual(first.lengths, [12, 12, 13, 11]);
  assert.deepEqual(second.lengths, [15], 'é is one code point');
  first.penalizedRewards.forEach((p, i) => {
    assert.ok(Math.abs(p - ((first.rewards[i] as number) - 0.01 * (first.lengths[i] as number))) < 1e-9);
  });
  // file:// serves the same model from the directory in place.
  const local = await score({
    model: { uri: `file://${rmDir}`, revision: '', digest: '' },
    items: [{ prompt: 'the film', responses: reviews }],
  });
  for (const [i, r] of (local.results[0]?.rewards ?? []).entries())
    assert.ok(Math.abs(r - (first.rewards[i] as number)) < 1e-5, 'file:// and nats-obj:// agree');
});

test("Score: a conversation is read through the reward model's own chat template, and scores as its rendered text", async () => {
  const template =
    "{% for m in messages %}{% if m.role not in ['system', 'user'] %}{{ raise_exception('no role ' + m.role) }}" +
    '{% endif %}<{{ m.role }}> {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<reply>{% endif %}';
  const chatDir = join(dir, 'chat-rm');
  await saveModelDir(chatDir, { ...(await loadModelDir(rmDir)), chatTemplate: template });
  const chatRm = { uri: `file://${chatDir}`, revision: '', digest: '' };
  const conversation = {
    messages: [
      { role: 'system', content: 'be kind' },
      { role: 'user', content: 'the film' },
    ],
  };
  const viaChat = await score({ model: chatRm, items: [{ prompt: '', conversation, responses: reviews }] });
  const viaText = await score({
    model: chatRm,
    items: [{ prompt: '<system> be kind\n<user> the film\n<reply>', responses: reviews }],
  });
  assert.deepEqual(viaChat.results, viaText.results, 'the conversation scores as its rendering');
  // A reward model without a template reads the contents, one per line.
  const plain = await score({
    model: { uri: rmUri, revision: '', digest: '' },
    items: [{ prompt: '', conversation, responses: reviews }],
  });
  const plainText = await score({
    model: { uri: rmUri, revision: '', digest: '' },
    items: [{ prompt: 'be kind\nthe film', responses: reviews }],
  });
  assert.deepEqual(plain.results, plainText.results);
  const { INVALID_ARGUMENT } = grpc.status;
  await assertStatus(
    score({ model: chatRm, items: [{ prompt: 'the film', conversation, responses: reviews }] }),
    INVALID_ARGUMENT,
    'items[0].conversation',
    'a prompt and a conversation',
  );
  await assertStatus(
    score({
      model: chatRm,
      items: [
        { prompt: 'x', responses: ['y'] },
        { prompt: '', conversation: { messages: [] }, responses: ['y'] },
      ],
    }),
    INVALID_ARGUMENT,
    'items[1].conversation.messages',
    'an empty conversation',
  );
  await assertStatus(
    score({
      model: chatRm,
      items: [{ prompt: '', conversation: { messages: [{ role: 'tool', content: 'x' }] }, responses: ['y'] }],
    }),
    INVALID_ARGUMENT,
    'items[0].conversation',
    'a role the template refuses',
  );
});

test('Score: concurrent calls share forward passes and get the numbers one big call gets', async () => {
  const model = { uri: rmUri, revision: '', digest: '' };
  const responses = Array.from({ length: 24 }, (_, i) => reviews[i % 4] + ' .'.repeat(i % 3));
  const whole = await score({ model, items: [{ prompt: 'the film', responses }] });
  const before = await batchRequests();
  const single = await Promise.all(
    responses.map((r) =>
      score({ model, items: [{ prompt: 'the film', responses: [r] }], lengthPenalty: 0.5 }),
    ),
  );
  single.forEach((res, i) => {
    const want = whole.results[0]?.rewards[i] as number;
    const got = res.results[0]?.rewards[0] as number;
    assert.ok(Math.abs(got - want) < 1e-4, `response ${i}: ${got} vs ${want}`);
    assert.ok(
      Math.abs(
        (res.results[0]?.penalizedRewards[0] as number) -
          (got - 0.5 * (res.results[0]?.lengths[0] as number)),
      ) < 1e-9,
    );
  });
  const after = await batchRequests();
  const passes = after.passes - before.passes;
  assert.ok(passes < responses.length, `${passes} forward passes for ${responses.length} calls`);
  assert.ok(passes > after.singles - before.singles, 'some forward pass served several calls');
});

/** Forward passes so far, and how many of them served a single request, from the service's metrics. */
async function batchRequests(): Promise<{ passes: number; singles: number }> {
  const metric = await service.context.metrics.getSingleMetric('rlhf_reward_batch_requests')?.get();
  let passes = 0;
  let singles = 0;
  for (const v of (metric?.values ?? []) as Array<{
    metricName?: string;
    labels: { le?: number | string };
    value: number;
  }>) {
    if (v.metricName === 'rlhf_reward_batch_requests_count') passes = v.value;
    if (v.metricName === 'rlhf_reward_batch_requests_bucket' && v.labels.le === 1) singles = v.value;
  }
  return { passes, singles };
}

test('Score: bad input gets its status and names the field; the server keeps serving', async () => {
  const model = { uri: rmUri, revision: '', digest: '' };
  const item = { prompt: 'the film', responses: [' was great .'] };
  const { INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, RESOURCE_EXHAUSTED } = grpc.status;
  const cases: Array<[string, Partial<ScoreRequest>, grpc.status, string]> = [
    ['no model', { items: [item] }, INVALID_ARGUMENT, 'model.uri'],
    ['no items', { model, items: [] }, INVALID_ARGUMENT, 'items'],
    [
      'no responses',
      { model, items: [{ prompt: 'x', responses: [] }] },
      INVALID_ARGUMENT,
      'items[0].responses',
    ],
    ['negative penalty', { model, items: [item], lengthPenalty: -0.1 }, INVALID_ARGUMENT, 'length_penalty'],
    ['NaN penalty', { model, items: [item], lengthPenalty: Number.NaN }, INVALID_ARGUMENT, 'length_penalty'],
    [
      'bad scheme',
      { model: { uri: 's3://x/y', revision: '', digest: '' }, items: [item] },
      INVALID_ARGUMENT,
      'model.uri',
    ],
    [
      'unknown model',
      { model: { uri: 'nats-obj://rlhf-test-models/missing', revision: '', digest: '' }, items: [item] },
      NOT_FOUND,
      'model.uri',
    ],
    [
      'unknown file model',
      { model: { uri: `file://${dir}/missing`, revision: '', digest: '' }, items: [item] },
      NOT_FOUND,
      'model.uri',
    ],
    [
      'policy as RM',
      { model: { uri: policyUri, revision: '', digest: '' }, items: [item] },
      FAILED_PRECONDITION,
      'model.uri',
    ],
    [
      'stale digest pin',
      { model: { uri: rmUri, revision: '', digest: 'SHA-256=AAAA' }, items: [item] },
      FAILED_PRECONDITION,
      'model.digest',
    ],
    [
      'too many responses',
      { model, items: [{ prompt: 'x', responses: Array(65).fill('y') }] },
      RESOURCE_EXHAUSTED,
      'items[0].responses',
    ],
    [
      'too many over items',
      { model, items: Array(3).fill({ prompt: 'x', responses: Array(30).fill('y') }) },
      RESOURCE_EXHAUSTED,
      'items',
    ],
    [
      'response too long',
      { model, items: [{ prompt: 'x', responses: ['y'.repeat(2001)] }] },
      RESOURCE_EXHAUSTED,
      'items[0].responses[0]',
    ],
  ];
  for (const [label, req, code, field] of cases) await assertStatus(score(req), code, field, label);

  // Invalid UTF-8 cannot be written through the typed client: patch the encoded bytes.
  const bytes = Buffer.from(
    ScoreRequestCodec.encode(
      ScoreRequestCodec.fromPartial({ model, items: [{ prompt: 'XX', responses: ['ok'] }] }),
    ).finish(),
  );
  const at = bytes.indexOf('XX');
  bytes[at] = 0xff;
  bytes[at + 1] = 0xfe;
  const raw = new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      '/rlhf.v1.RewardModelService/Score',
      (b: Buffer) => b,
      (b: Buffer) => ScoreResponse.decode(b),
      bytes,
      (err, res) => (err ? reject(err) : resolve(res)),
    ),
  );
  await assertStatus(raw, INVALID_ARGUMENT, 'items[0].prompt', 'invalid UTF-8');

  // Over the server's message size limit (256 KiB here): gRPC itself refuses it.
  const huge = Array.from({ length: 200 }, () => 'z'.repeat(1900));
  await assertStatus(
    score({ model, items: [{ prompt: 'x', responses: huge }] }),
    RESOURCE_EXHAUSTED,
    null,
    'message size',
  );

  const ok = await score({ model, items: [item] });
  assert.equal(ok.results.length, 1, 'still serving');
});

test('JUDGE stage over NATS: two shards judged, records kept with rewards; bad input is terminated', async () => {
  const run = `rm-judge-${Date.now()}`;
  await recordRun(nc, run);
  const s = store();
  const prefix = `nats-obj://rlhf-artifacts/runs/default/${run}/iter-1`;
  const shards = [
    [
      { prompt: 'the film', responses: reviews, id: 0 },
      { prompt: 'the film', responses: [' was lovely .', ' was boring .'], id: 1 },
    ],
    [{ prompt: 'the film', responses: [' was dull .', ' was superb .'], id: 2 }],
  ];
  const encode = (rows: object[]) =>
    new TextEncoder().encode(`${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
  for (const [i, rows] of shards.entries()) await s.put(`${prefix}/generate/shard-${i}.jsonl`, encode(rows));

  const events: StageEvent[] = [];
  const sub = nc.subscribe(`rlhf.events.default.${run}.>`);
  const done = (async () => {
    for await (const m of sub) {
      events.push(StageEvent.decode(m.data));
      const finished = events.filter((e) => e.event?.$case === 'shardDone' || e.event?.$case === 'failed');
      if (finished.length >= 3) break;
    }
  })();

  const { js } = await openJetStream(nc);
  const judge = {
    model: { uri: rmUri, revision: '', digest: '' },
    type: JudgeType.JUDGE_TYPE_REWARD,
    lengthPenalty: 0.01,
  };
  const work = (shard: number, input: string) =>
    StageWork.fromPartial({
      key: { namespace: 'default', run, iteration: 1, stage: Stage.STAGE_JUDGE },
      shardIndex: shard,
      shardCount: 3,
      inputUri: input,
      outputUri: `${prefix}/judge/shard-${shard}.jsonl`,
      params: { $case: 'judge', value: judge },
    });
  for (const shard of [0, 1]) {
    await publishWork(
      js,
      workSubject('default', 'judge', run, 1),
      StageWork.encode(work(shard, `${prefix}/generate/shard-${shard}.jsonl`)).finish(),
      shardMsgId('default', 'judge', run, 1, shard),
    );
  }
  await publishWork(
    js,
    workSubject('default', 'judge', run, 1),
    StageWork.encode(work(2, `${prefix}/generate/missing.jsonl`)).finish(),
    shardMsgId('default', 'judge', run, 1, 2),
  );
  await withTimeout(done, 20_000, () => `events so far: ${JSON.stringify(events)}`);
  sub.unsubscribe();

  const failed = events.find((e) => e.event?.$case === 'failed');
  assert.equal(failed?.event?.$case, 'failed');
  if (failed?.event?.$case === 'failed') {
    assert.equal(failed.event.value.shardIndex, 2);
    assert.equal(failed.event.value.reason, FailureReason.FAILURE_REASON_NOT_FOUND);
    assert.equal(failed.event.value.retryable, false);
  }
  for (const [i, rows] of shards.entries()) {
    const text = new TextDecoder().decode(await s.get(`${prefix}/judge/shard-${i}.jsonl`));
    const judged = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt: string; responses: string[]; rewards: number[]; id: number });
    assert.deepEqual(
      judged.map((r) => r.id),
      rows.map((r) => r.id),
      'every record once, in order, extra fields kept',
    );
    for (const r of judged) {
      const direct = await score({
        model: judge.model,
        items: [{ prompt: r.prompt, responses: r.responses }],
        lengthPenalty: 0.01,
      });
      for (const [k, x] of r.rewards.entries())
        assert.ok(Math.abs(x - (direct.results[0]?.penalizedRewards[k] as number)) < 1e-4);
    }
  }
});
