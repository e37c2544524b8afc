/**
 * The preference-model service in-process on loopback, with a real nats-server: Compare and Rank through
 * the generated client on a freshly trained tiny PM (antisymmetry after debiasing, good above bad, a linear
 * number of tournament comparisons), every bad input answered with its status and field while the server
 * keeps serving, and a sharded JUDGE stage of the preference type processed over NATS.
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
import { createPreferenceModelService } from '@rlhf/preference-model';
import {
  type CompareRequest,
  CompareRequest as CompareRequestCodec,
  CompareResponse,
  JudgeType,
  PreferenceModelServiceClient,
  RankMethod,
  type RankRequest,
  RankRequest as RankRequestCodec,
  Stage,
  StageEvent,
  StageWork,
} from '@rlhf/proto';
import { publishModelDir } from '@rlhf/service-kit';
import { assertStatus, unaryCall } from '../helpers/grpc-calls.js';
import { baseModel, trainedJudge } from '../helpers/judge-models.js';
import { recordRun } from '../helpers/run-record.js';
import { withTimeout } from '../helpers/timeout.js';

let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let service: RunningService;
let client: PreferenceModelServiceClient;
let pmUri: string;
let pmDir: string;
let rmUri: string;
const store = () => new ArtifactRouter(nc, ArtifactSandbox.unrestricted());

before(async () => {
  nats = await natsForTests();
  nc = await connectNats({ url: nats.url, name: 'pm-test', logger: createLogger('test', { level: 'warn' }) });
  dir = await mkdtemp(join(tmpdir(), 'rlhf-pm-'));
  const stamp = Date.now();
  pmUri = `nats-obj://rlhf-test-models/pm-${stamp}`;
  pmDir = await trainedJudge(dir, 'pm');
  await publishModelDir(store(), pmDir, pmUri);
  rmUri = `nats-obj://rlhf-test-models/rm-${stamp}`;
  await publishModelDir(store(), await baseModel(dir, 'rm', 'scalar'), rmUri);
  service = await serveService(
    createPreferenceModelService({
      limits: { maxResponses: 12, maxChars: 1000 },
      cacheDir: join(dir, 'cache'),
    }),
    { host: '127.0.0.1', port: 0, natsUrl: nats.url, logLevel: 'error', artifactRoots: [dir] },
  );
  client = new PreferenceModelServiceClient(
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

const model = () => ({ uri: pmUri, revision: '', digest: '' });
const compare = (req: Partial<CompareRequest>) =>
  unaryCall(client.compare.bind(client), CompareRequestCodec.fromPartial(req));
const rank = (req: Partial<RankRequest>) =>
  unaryCall(client.rank.bind(client), RankRequestCodec.fromPartial(req));

test('Compare: debiased probabilities are antisymmetric, the mean of both orders, good above bad', async () => {
  const ab = await compare({
    model: model(),
    prompt: 'the film',
    responseA: 'was great .',
    responseB: 'was dull .',
  });
  const ba = await compare({
    model: model(),
    prompt: 'the film',
    responseA: 'was dull .',
    responseB: 'was great .',
  });
  assert.ok(Math.abs(ab.probABetter + ba.probABetter - 1) < 1e-6, `${ab.probABetter} + ${ba.probABetter}`);
  assert.ok(Math.abs(ab.probABetter - (ab.probAFirst + ab.probASecond) / 2) < 1e-9);
  assert.ok(
    Math.abs(ab.probAFirst - (1 - ba.probASecond)) < 1e-6,
    'the same presentation seen from both sides',
  );
  assert.ok(ab.probABetter > 0.8, `P(great > dull) = ${ab.probABetter}`);
  for (const p of [ab.probAFirst, ab.probASecond]) assert.ok(p >= 0 && p <= 1);
});

test("Compare and Rank: a conversation is read through the preference model's own chat template", async () => {
  const template =
    "{% for m in messages %}{% if m.role not in ['system', 'user'] %}{{ raise_exception('no role ' + m.role) }}" +
    '{% endif %}<{{ m.role }}> {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<reply>{% endif %}';
  const chatDir = join(dir, 'chat-pm');
  await saveModelDir(chatDir, { ...(await loadModelDir(pmDir)), chatTemplate: template });
  const chatPm = { uri: `file://${chatDir}`, revision: '', digest: '' };
  const conversation = { messages: [{ role: 'user', content: 'the film' }] };
  const rendered = '<user> the film\n<reply>';
  const pair = { responseA: 'was great .', responseB: 'was dull .' };
  assert.deepEqual(
    await compare({ model: chatPm, conversation, ...pair }),
    await compare({ model: chatPm, prompt: rendered, ...pair }),
    'a conversation compares as its rendering',
  );
  const responses = ['was dull .', 'was great .', 'was awful .'];
  assert.deepEqual(
    await rank({ model: chatPm, conversation, responses }),
    await rank({ model: chatPm, prompt: rendered, responses }),
    'and ranks as its rendering',
  );
  const { INVALID_ARGUMENT } = grpc.status;
  await assertStatus(
    compare({ model: chatPm, prompt: 'the film', conversation, ...pair }),
    INVALID_ARGUMENT,
    'conversation',
    'a prompt and a conversation',
  );
  await assertStatus(
    rank({ model: chatPm, conversation: { messages: [] }, responses }),
    INVALID_ARGUMENT,
    'conversation.messages',
    'an empty conversation',
  );
  await assertStatus(
    rank({ model: chatPm, conversation: { messages: [{ role: 'tool', content: 'x' }] }, responses }),
    INVALID_ARGUMENT,
    'conversation',
    'a role the template refuses',
  );
});

test('Compare: concurrent calls are batched and agree with one-at-a-time answers', async () => {
  const pairs = ['great', 'superb', 'lovely', 'awful', 'dull', 'boring'].flatMap((a) =>
    ['awful', 'lovely'].map((b) => ({ responseA: `was ${a} .`, responseB: `was ${b} .` })),
  );
  const alone: number[] = [];
  for (const p of pairs)
    alone.push((await compare({ model: model(), prompt: 'the film', ...p })).probABetter);
  const passes = async () => {
    const m = await service.context.metrics.getSingleMetric('rlhf_preference_batch_comparisons')?.get();
    const count = (m?.values ?? []).find((v) =>
      (v as { metricName?: string }).metricName?.endsWith('_count'),
    );
    return count?.value ?? 0;
  };
  const before = await passes();
  const together = await Promise.all(pairs.map((p) => compare({ model: model(), prompt: 'the film', ...p })));
  const used = (await passes()) - before;
  assert.ok(used < pairs.length, `${used} forward passes for ${pairs.length} concurrent calls`);
  together.forEach((r, i) => {
    assert.ok(Math.abs(r.probABetter - (alone[i] as number)) < 1e-5, `pair ${i}`);
  });
});

test('Rank: tournament finds the best with at most 2n comparisons; round robin compares every pair', async () => {
  const responses = [
    'was dull .',
    'was awful .',
    'was boring .',
    'was superb .',
    'was dull .',
    'was awful .',
    'was boring .',
    'was dull .',
    'was awful .',
  ];
  const t = await rank({
    model: model(),
    prompt: 'the film',
    responses,
    method: RankMethod.RANK_METHOD_TOURNAMENT,
  });
  assert.equal(t.ranking[0], 3);
  assert.deepEqual(
    [...t.ranking].sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.ok(t.comparisons <= 2 * responses.length, `${t.comparisons} comparisons for ${responses.length}`);
  assert.equal(t.scores.length, responses.length);
  const byDefault = await rank({ model: model(), prompt: 'the film', responses });
  assert.deepEqual(byDefault.ranking, t.ranking, 'unspecified is the tournament');
  const rr = await rank({
    model: model(),
    prompt: 'the film',
    responses: responses.slice(0, 5),
    method: RankMethod.RANK_METHOD_ROUND_ROBIN,
  });
  assert.equal(rr.ranking[0], 3);
  assert.equal(rr.comparisons, 10);
});

test('bad input gets its status and names the field; the server keeps serving', async () => {
  const { INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, RESOURCE_EXHAUSTED } = grpc.status;
  const ok = { model: model(), prompt: 'the film', responseA: 'was great .', responseB: 'was dull .' };
  const compareCases: Array<[string, Partial<CompareRequest>, grpc.status, string]> = [
    ['no model', { ...ok, model: undefined }, INVALID_ARGUMENT, 'model.uri'],
    [
      'unknown model',
      { ...ok, model: { uri: 'nats-obj://rlhf-test-models/none', revision: '', digest: '' } },
      NOT_FOUND,
      'model.uri',
    ],
    [
      'reward model as PM',
      { ...ok, model: { uri: rmUri, revision: '', digest: '' } },
      FAILED_PRECONDITION,
      'model.uri',
    ],
    [
      'longer than the context',
      { ...ok, responseA: 'was great . '.repeat(30) },
      INVALID_ARGUMENT,
      'response_a',
    ],
    ['over the size limit', { ...ok, responseB: 'x'.repeat(1001) }, RESOURCE_EXHAUSTED, 'response_b'],
  ];
  for (const [label, req, code, field] of compareCases) await assertStatus(compare(req), code, field, label);

  const responses = ['was great .', 'was dull .'];
  const rankCases: Array<[string, Partial<RankRequest>, grpc.status, string]> = [
    ['one response', { model: model(), prompt: 'p', responses: ['a'] }, INVALID_ARGUMENT, 'responses'],
    [
      'too many responses',
      { model: model(), prompt: 'p', responses: Array(13).fill('a') },
      RESOURCE_EXHAUSTED,
      'responses',
    ],
    [
      'unknown method',
      { model: model(), prompt: 'p', responses, method: 7 as RankMethod },
      INVALID_ARGUMENT,
      'method',
    ],
    [
      'long prompt',
      { model: model(), prompt: 'the film '.repeat(40), responses },
      INVALID_ARGUMENT,
      'prompt',
    ],
  ];
  for (const [label, req, code, field] of rankCases) await assertStatus(rank(req), code, field, label);

  const bytes = Buffer.from(
    CompareRequestCodec.encode(CompareRequestCodec.fromPartial({ ...ok, responseB: 'XX' })).finish(),
  );
  const at = bytes.lastIndexOf('XX');
  bytes[at] = 0xc3; // a lead byte followed by a non-continuation byte
  bytes[at + 1] = 0x28;
  const raw = new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      '/rlhf.v1.PreferenceModelService/Compare',
      (b: Buffer) => b,
      (b: Buffer) => CompareResponse.decode(b),
      bytes,
      (err, res) => (err ? reject(err) : resolve(res)),
    ),
  );
  await assertStatus(raw, INVALID_ARGUMENT, 'response_b', 'invalid UTF-8');

  const still = await compare(ok);
  assert.ok(still.probABetter > 0.5, 'still serving');
});

test('JUDGE stage over NATS: preference shards get rewards n-1-position of the tournament; other judge types are left alone', async () => {
  const run = `pm-judge-${Date.now()}`;
  await recordRun(nc, run);
  const s = store();
  const prefix = `nats-obj://rlhf-artifacts/runs/default/${run}/iter-1`;
  const shards = [
    [
      { prompt: 'the film', responses: ['was dull .', 'was superb .', 'was awful .', 'was boring .'], n: 0 },
      { prompt: 'the film', responses: ['was great .', 'was awful .'], n: 1 },
    ],
    [{ prompt: 'the film', responses: ['was boring .', 'was lovely .', 'was dull .'], n: 2 }],
  ];
  const encode = (rows: object[]) =>
    new TextEncoder().encode(`${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
  for (const [i, rows] of shards.entries()) await s.put(`${prefix}/generate/shard-${i}.jsonl`, encode(rows));

  const events: StageEvent[] = [];
  const sub = nc.subscribe(`rlhf.events.default.${run}.>`);
  const doneCount = () => events.filter((e) => e.event?.$case === 'shardDone').length;
  const collect = (async () => {
    for await (const m of sub) events.push(StageEvent.decode(m.data));
  })();
  const until = async (cond: () => boolean) => {
    while (!cond()) await new Promise((r) => setTimeout(r, 50));
  };

  const { js } = await openJetStream(nc);
  const work = (shard: number, type: JudgeType) =>
    StageWork.fromPartial({
      key: { namespace: 'default', run, iteration: 1, stage: Stage.STAGE_JUDGE },
      shardIndex: shard,
      shardCount: 3,
      inputUri: `${prefix}/generate/shard-${Math.min(shard, 1)}.jsonl`,
      outputUri: `${prefix}/judge/shard-${shard}.jsonl`,
      params: {
        $case: 'judge',
        value: { model: model(), type, rankMethod: RankMethod.RANK_METHOD_TOURNAMENT },
      },
    });
  // Preference-judge shards have their own queue (reward-model workers never pull them).
  const subject = workSubject('default', 'judge-preference', run, 1);
  for (const shard of [0, 1])
    await publishWork(
      js,
      subject,
      StageWork.encode(work(shard, JudgeType.JUDGE_TYPE_PREFERENCE)).finish(),
      shardMsgId('default', 'judge-preference', run, 1, shard),
    );
  // A reward-type shard on this queue (a misrouted one): this worker hands it back untouched.
  await publishWork(
    js,
    subject,
    StageWork.encode(work(2, JudgeType.JUDGE_TYPE_REWARD)).finish(),
    shardMsgId('default', 'judge-preference', run, 1, 2),
  );
  await withTimeout(
    until(() => doneCount() >= 2),
    20_000,
    () => JSON.stringify(events),
  );

  const firstOutput = await s.get(`${prefix}/judge/shard-0.jsonl`);
  // A redelivered shard (here: published again under a new id) overwrites its output, never appends.
  await publishWork(
    js,
    subject,
    StageWork.encode(work(0, JudgeType.JUDGE_TYPE_PREFERENCE)).finish(),
    `${shardMsgId('default', 'judge-preference', run, 1, 0)}-again`,
  );
  await withTimeout(
    until(() => doneCount() >= 3),
    20_000,
    () => JSON.stringify(events),
  );
  assert.deepEqual(await s.get(`${prefix}/judge/shard-0.jsonl`), firstOutput);
  sub.unsubscribe();
  await collect;

  assert.ok(
    !events.some((e) => e.event?.$case === 'started' && e.event.value.shardIndex === 2),
    'the reward shard was not started',
  );
  assert.ok(!events.some((e) => e.event?.$case === 'failed'), JSON.stringify(events));
  for (const [i, rows] of shards.entries()) {
    const text = new TextDecoder().decode(await s.get(`${prefix}/judge/shard-${i}.jsonl`));
    const judged = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt: string; responses: string[]; rewards: number[]; n: number });
    assert.deepEqual(
      judged.map((r) => r.n),
      rows.map((r) => r.n),
      'every record once, in order, extra fields kept',
    );
    for (const r of judged) {
      const ranked = await rank({ model: model(), prompt: r.prompt, responses: r.responses });
      const want = new Array<number>(r.responses.length);
      ranked.ranking.forEach((index, position) => {
        want[index] = r.responses.length - 1 - position;
      });
      assert.deepEqual(r.rewards, want);
    }
  }
});
