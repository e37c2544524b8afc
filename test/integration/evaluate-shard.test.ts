/**
 * The EVALUATE stage's shard function (policy-generator) on tiny models: a policy fine-tuned on reviews
 * "the film was <word> .", its random-init base as the baseline (pi_0) and a trained reward model. Checked:
 * one row per (prompt, sample) in order, rows independent of the sharding, the baseline's log-probs taken
 * on the policy's own token ids (the same model under another URI gives the sampler's log-probs), KL 0
 * when the baseline is the policy, gold from the reference task, the proxy reward as the RM's raw score,
 * bad input refused with its code and field, and a sharded stage through the real NATS worker.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { defaultTrainOptions, runTraining, scoreResponses } from '@rlhf/ml-engine';
import {
  type EvalRow,
  evaluationMetrics,
  formatEvalRows,
  parseEvalRows,
  parseEvalRowsJsonl,
} from '@rlhf/pipeline';
import {
  ArtifactRouter,
  ArtifactSandbox,
  asRlhfError,
  connectNats,
  createLogger,
  type NatsConnection,
  openJetStream,
  publishWork,
  shardMsgId,
  workSubject,
} from '@rlhf/platform';
import { natsForTests, type TestNats } from '@rlhf/platform/testing';
import {
  type EvaluateShardParams,
  FailureReason,
  JudgeType,
  Stage,
  StageEvent,
  StageWork,
} from '@rlhf/proto';
import { sentimentOracle } from '@rlhf/reference-task';
import { ModelCache, publishModelDir } from '@rlhf/service-kit';
import { evaluateShard, startEvaluateWorker } from '../../services/policy-generator/src/evaluate-shard.js';
import { badWords, baseModel, goodWords, trainedJudge } from '../helpers/judge-models.js';
import { recordRun } from '../helpers/run-record.js';
import { withTimeout } from '../helpers/timeout.js';

let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let store: ArtifactRouter;
let cache: ModelCache;
const uris = { policy: '', baseline: '', rm: '', policyAgain: '' };
const prompts = ['the film', 'the film was', 'the', 'the film', 'the film was', 'the film'];
let promptsUri: string;

const model = (uri: string) => ({ uri, revision: '', digest: '' });
const noProgress = { progress: async () => {} };
const encode = (lines: string[]) => new TextEncoder().encode(`${lines.join('\n')}\n`);
const promptLines = (ps: readonly string[]) => ps.map((prompt) => JSON.stringify({ prompt }));

before(async () => {
  nats = await natsForTests();
  nc = await connectNats({
    url: nats.url,
    name: 'eval-test',
    logger: createLogger('test', { level: 'warn' }),
  });
  dir = await mkdtemp(join(tmpdir(), 'rlhf-eval-'));
  store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
  cache = new ModelCache({ store, cacheDir: join(dir, 'cache') });
  // pi_0 is a random-init LM; pi_t is it fine-tuned on grammatical reviews (some good, some bad).
  const base = await baseModel(dir, 'base', 'lm', 1);
  const sft = join(dir, 'sft.jsonl');
  const words = [...goodWords, ...badWords];
  await writeFile(
    sft,
    encode(
      Array.from({ length: 384 }, (_, i) => {
        const review = ['the', 'film', 'was', words[i % words.length], '.'];
        const cut = 1 + (Math.floor(i / words.length) % 3);
        return JSON.stringify({
          prompt: review.slice(0, cut).join(' '),
          completion: ` ${review.slice(cut).join(' ')}`,
        });
      }),
    ),
  );
  const policyDir = join(dir, 'policy');
  await runTraining({
    modelDir: base,
    dataFile: sft,
    outDir: policyDir,
    options: { ...defaultTrainOptions, objective: 'sft', lr: 1e-2, epochs: 4, batchSize: 16, warmupRatio: 0 },
  });
  const stamp = Date.now();
  uris.policy = `nats-obj://rlhf-test-models/eval-policy-${stamp}`;
  await publishModelDir(store, policyDir, uris.policy);
  uris.policyAgain = `file://${policyDir}`;
  uris.baseline = `file://${base}`;
  uris.rm = `file://${await trainedJudge(dir, 'rm')}`;
  promptsUri = `file://${dir}/prompts.jsonl`;
  await store.put(promptsUri, encode(promptLines(prompts)));
});

after(async () => {
  await cache?.close();
  await nc?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

const sampling = {
  temperature: 1,
  topK: 0,
  maxNewTokens: 12,
  seed: 7,
  stop: [],
  stopTokenIds: [],
  greedy: false,
};
const rewardJudge = {
  model: model(''),
  type: JudgeType.JUDGE_TYPE_REWARD,
  lengthPenalty: 0.5,
  rankMethod: 0,
  goldReward: '',
};

const params = (over: Partial<EvaluateShardParams> = {}): EvaluateShardParams => ({
  policy: model(uris.policy),
  baseline: model(uris.baseline),
  judge: { ...rewardJudge, model: model(uris.rm) },
  goldReward: 'sentiment',
  sampling,
  n: 2,
  ...over,
});

let outputs = 0;
const work = (input: string, firstRow: number, p: EvaluateShardParams, output?: string) =>
  StageWork.fromPartial({
    key: { namespace: 'default', run: 'eval-test', iteration: 1, stage: Stage.STAGE_EVALUATE },
    shardIndex: 0,
    shardCount: 1,
    inputUri: input,
    outputUri: output ?? `file://${dir}/out/shard-${outputs++}.jsonl`,
    firstRowIndex: firstRow,
    params: { $case: 'evaluate', value: p },
  });

/** Runs one shard directly and reads back its rows. */
async function evaluateRows(input: string, firstRow: number, p: EvaluateShardParams): Promise<EvalRow[]> {
  const w = work(input, firstRow, p);
  const progress: Array<{ done?: number; total?: number }> = [];
  const result = await evaluateShard(w, { store, cache }, { progress: async (x) => void progress.push(x) });
  assert.equal(result.outputUri, w.outputUri);
  const rows = parseEvalRowsJsonl(await store.get(w.outputUri), w.outputUri);
  assert.equal(result.items, rows.length);
  assert.equal(progress.at(-1)?.done, progress.at(-1)?.total, 'progress ends at done = total');
  return rows;
}

const close = (a: number | null, b: number | null, what: string, tol = 1e-4) => {
  assert.ok(a !== null && b !== null && Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
};

/** Rows equal: every discrete field exactly, the float ones to float32 noise across batch shapes. */
function sameRows(a: readonly EvalRow[], b: readonly EvalRow[]): void {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => {
    const y = b[i] as EvalRow;
    const { logp, logpBaseline, proxyReward, ...restX } = x;
    const { logp: l2, logpBaseline: lb2, proxyReward: p2, ...restY } = y;
    assert.deepEqual(restX, restY, `row ${i}`);
    close(logp, l2, `row ${i} logp`);
    close(logpBaseline, lb2, `row ${i} logpBaseline`);
    close(proxyReward, p2, `row ${i} proxyReward`);
  });
}

let whole: EvalRow[] = [];

test('one row per (prompt, sample) in order; the same rows whether the prompts are one shard or two', async () => {
  whole = await evaluateRows(promptsUri, 0, params());
  assert.equal(whole.length, prompts.length * 2);
  assert.deepEqual(
    whole.map((r) => [r.row, r.sample, r.prompt]),
    prompts.flatMap((p, i) => [
      [i, 0, p],
      [i, 1, p],
    ]),
  );
  assert.ok(new Set(whole.map((r) => r.completion)).size > 1, 'samples differ (seeded per row and sample)');

  const first = `file://${dir}/prompts-0.jsonl`;
  const second = `file://${dir}/prompts-1.jsonl`;
  await store.put(first, encode(promptLines(prompts.slice(0, 2))));
  await store.put(second, encode(promptLines(prompts.slice(2))));
  const sharded = [...(await evaluateRows(first, 0, params())), ...(await evaluateRows(second, 2, params()))];
  sameRows(sharded, whole);

  // Without first_row_index the second shard's prompts would draw the first shard's streams.
  const unshifted = await evaluateRows(second, 0, params());
  assert.notDeepEqual(
    unshifted.map((r) => r.completion_ids),
    whole.slice(4).map((r) => r.completion_ids),
  );
  // Another seed, other samples.
  const reseeded = await evaluateRows(promptsUri, 0, params({ sampling: { ...sampling, seed: 8 } }));
  assert.notDeepEqual(
    reseeded.map((r) => r.completion_ids),
    whole.map((r) => r.completion_ids),
  );
});

test('rows carry the gold of task "sentiment", the RM raw score as proxy, and the baseline log-probs', async () => {
  assert.ok(whole.length > 0, 'needs the first test');
  const rmModel = await cache.get(uris.rm, 'scalar');
  for (const r of whole) {
    assert.equal(r.endedWithEos, r.finish_reason === 'eos');
    assert.equal(r.gold, sentimentOracle.gold(r.prompt, r.completion, r.endedWithEos));
    assert.equal(r.grammatical, sentimentOracle.grammatical(r.prompt, r.completion, r.endedWithEos));
    assert.equal(r.words, sentimentOracle.words(r.completion));
    assert.ok(r.completion_ids.length >= 1 && r.completion_ids.length <= 12);
    const [direct] = await scoreResponses(
      rmModel.model,
      rmModel.session,
      [{ prompt: r.prompt, responses: [r.completion] }],
      0,
    );
    close(r.proxyReward, direct?.rewards[0] ?? null, 'proxy reward is the raw RM score (no length penalty)');
    assert.ok(r.logp < 0 && r.logpBaseline < 0);
  }
  // The fine-tuned policy writes grammatical reviews; their gold is the sentiment of their sentences, not the
  // -2 of the gate.
  const grammatical = whole.filter((r) => r.grammatical);
  assert.ok(grammatical.length >= whole.length / 2, `${grammatical.length} of ${whole.length} grammatical`);
  assert.ok(grammatical.every((r) => (r.gold as number) !== -2));
  // pi_t is far from its random-init base: its own samples are much likelier under it.
  const m = evaluationMetrics(parseEvalRows(formatEvalRows(whole), 'whole'), []);
  assert.ok(m.kl > 1, `KL(pi_t || pi_0) = ${m.kl}`);
  assert.equal(m.samples, whole.length);
});

test('the baseline scores the sampled token ids: the policy under another URI gives the sampler log-probs', async () => {
  const rows = await evaluateRows(promptsUri, 0, params({ baseline: model(uris.policyAgain) }));
  sameRows(
    rows.map((r) => ({ ...r, logpBaseline: r.logp })),
    whole.map((r) => ({ ...r, logpBaseline: r.logp })),
  );
  for (const [i, r] of rows.entries())
    close(r.logpBaseline, r.logp, `row ${i}: sequenceLogps vs sampler`, 2e-3);
});

test('KL is 0 when the baseline is the policy; no gold or reward judge gives nulls and whitespace words', async () => {
  const rows = await evaluateRows(
    promptsUri,
    0,
    params({
      baseline: model(uris.policy),
      goldReward: '',
      judge: {
        type: JudgeType.JUDGE_TYPE_PREFERENCE,
        model: model(uris.policy),
        lengthPenalty: 0,
        rankMethod: 0,
        goldReward: '',
      },
      n: 0,
    }),
  );
  assert.equal(rows.length, prompts.length, 'n = 0 means one sample per prompt');
  for (const r of rows) {
    assert.equal(r.logpBaseline, r.logp);
    assert.equal(r.proxyReward, null);
    assert.equal(r.gold, null);
    assert.equal(r.grammatical, null);
    assert.equal(r.words, r.completion.split(/\s+/).filter((w) => w !== '').length);
  }
  const samples = parseEvalRows(formatEvalRows(rows), 'rows');
  const m = evaluationMetrics(samples, samples);
  assert.equal(m.kl, 0);
  assert.equal(m.goldReward, null);
  // Sample 0 of each prompt is the same stream as in the n = 2 run.
  assert.deepEqual(
    rows.map((r) => r.completion_ids),
    whole.filter((r) => r.sample === 0).map((r) => r.completion_ids),
  );
  const noJudge = await evaluateRows(promptsUri, 0, params({ judge: undefined, n: 1 }));
  assert.ok(noJudge.every((r) => r.proxyReward === null && r.gold !== null));
});

test('stop strings end a sample with reason stop, its text cut before the match; a rerun overwrites', async () => {
  const output = `file://${dir}/out/stop.jsonl`;
  await store.put(output, encode(['left over from an earlier delivery']));
  const w = work(promptsUri, 0, params({ sampling: { ...sampling, stop: [' .'] }, n: 1 }), output);
  const result = await evaluateShard(w, { store, cache }, noProgress);
  const rows = parseEvalRowsJsonl(await store.get(output), output);
  assert.equal(result.items, prompts.length);
  const stopped = rows.filter((r) => r.finish_reason === 'stop');
  assert.ok(stopped.length > 0, 'the fine-tuned policy ends its reviews with " ."');
  for (const r of stopped) {
    assert.ok(!r.completion.includes(' .'), r.completion);
    assert.equal(r.endedWithEos, false);
    assert.equal(r.grammatical, false, 'no EOS: the gold gate fails');
    assert.equal(r.gold, -2);
  }
  // Same streams as without the stop: the stopped samples are prefixes of the unstopped ones.
  for (const r of rows) {
    const full = whole.find((x) => x.row === r.row && x.sample === 0) as EvalRow;
    assert.deepEqual(r.completion_ids, full.completion_ids.slice(0, r.completion_ids.length));
  }
});

test('bad input fails with its code and field, and writes nothing', async () => {
  const empty = `file://${dir}/empty.jsonl`;
  await store.put(empty, new Uint8Array(0));
  const text = `file://${dir}/text.jsonl`;
  await store.put(text, encode([JSON.stringify({ text: 'the film was great .' })]));
  const longPrompt = `file://${dir}/long.jsonl`;
  await store.put(longPrompt, encode(promptLines(['the film was great . '.repeat(20)])));
  const cases: Array<[string, StageWork, string, string]> = [
    [
      'unknown task',
      work(promptsUri, 0, params({ goldReward: 'imdb' })),
      'INVALID_ARGUMENT',
      'evaluate.gold_reward',
    ],
    [
      'RM as the policy',
      work(promptsUri, 0, params({ policy: model(uris.rm) })),
      'FAILED_PRECONDITION',
      'evaluate.policy.uri',
    ],
    [
      'RM as the baseline',
      work(promptsUri, 0, params({ baseline: model(uris.rm) })),
      'FAILED_PRECONDITION',
      'evaluate.baseline.uri',
    ],
    [
      'LM as the reward judge',
      work(promptsUri, 0, params({ judge: { ...rewardJudge, model: model(uris.policy) } })),
      'FAILED_PRECONDITION',
      'evaluate.judge.model.uri',
    ],
    [
      'reward judge without a model',
      work(promptsUri, 0, params({ judge: { ...rewardJudge, model: undefined } })),
      'INVALID_ARGUMENT',
      'evaluate.judge.model.uri',
    ],
    [
      'no policy',
      work(promptsUri, 0, params({ policy: undefined })),
      'INVALID_ARGUMENT',
      'evaluate.policy.uri',
    ],
    [
      'no baseline',
      work(promptsUri, 0, params({ baseline: undefined })),
      'INVALID_ARGUMENT',
      'evaluate.baseline.uri',
    ],
    [
      'missing policy',
      work(promptsUri, 0, params({ policy: model(`file://${dir}/nope`) })),
      'NOT_FOUND',
      'evaluate.policy.uri',
    ],
    ['empty input', work(empty, 0, params()), 'INVALID_ARGUMENT', empty],
    ['missing input', work(`file://${dir}/missing.jsonl`, 0, params()), 'NOT_FOUND', 'input_uri'],
    ['not a prompt row', work(text, 0, params()), 'INVALID_ARGUMENT', `${text}:1:prompt`],
    [
      'prompt too long for the positions',
      work(longPrompt, 0, params()),
      'INVALID_ARGUMENT',
      `${longPrompt}:1`,
    ],
    ['n above 1024', work(promptsUri, 0, params({ n: 1025 })), 'INVALID_ARGUMENT', 'evaluate.n'],
    [
      'max_new_tokens above the limit',
      work(promptsUri, 0, params({ sampling: { ...sampling, maxNewTokens: 5000 } })),
      'INVALID_ARGUMENT',
      'evaluate.sampling.max_new_tokens',
    ],
    [
      'top_p out of range',
      work(promptsUri, 0, params({ sampling: { ...sampling, topP: 0 } })),
      'INVALID_ARGUMENT',
      'evaluate.sampling.top_p',
    ],
    [
      'JUDGE params on an EVALUATE shard',
      StageWork.fromPartial({
        ...work(promptsUri, 0, params()),
        params: { $case: 'judge', value: rewardJudge },
      }),
      'INVALID_ARGUMENT',
      'params',
    ],
  ];
  for (const [label, w, code, field] of cases) {
    await assert.rejects(evaluateShard(w, { store, cache }, noProgress), (err: unknown) => {
      const e = asRlhfError(err);
      assert.ok(e, `${label}: ${String(err)}`);
      assert.equal(e.code, code, `${label}: ${e.describe()}`);
      assert.equal(e.field, field, `${label}: ${e.describe()}`);
      return true;
    });
    assert.equal(await store.info(w.outputUri), null, `${label}: nothing written`);
  }
});

test('EVALUATE over NATS: two shards through the worker give the one-shard rows; bad input is terminated', async () => {
  assert.ok(whole.length > 0, 'needs the first test');
  const run = `eval-${Date.now()}`;
  await recordRun(nc, run);
  const prefix = `nats-obj://rlhf-artifacts/runs/default/${run}/iter-1`;
  const inputs = [prompts.slice(0, 2), prompts.slice(2)];
  for (const [i, ps] of inputs.entries())
    await store.put(`${prefix}/eval-input/shard-${i}.jsonl`, encode(promptLines(ps)));

  const events: StageEvent[] = [];
  const sub = nc.subscribe(`rlhf.events.default.${run}.>`);
  const done = (async () => {
    for await (const m of sub) {
      events.push(StageEvent.decode(m.data));
      const finished = events.filter((e) => e.event?.$case === 'shardDone' || e.event?.$case === 'failed');
      if (finished.length >= 3) break;
    }
  })();
  const worker = await startEvaluateWorker({
    nats: nc,
    logger: createLogger('evaluate-test', { level: 'warn' }),
    store,
    cache,
    ackWaitMs: 10_000,
  });
  try {
    const { js } = await openJetStream(nc);
    const shard = (i: number, input: string, firstRow: number, p: EvaluateShardParams) =>
      StageWork.fromPartial({
        key: { namespace: 'default', run, iteration: 1, stage: Stage.STAGE_EVALUATE },
        shardIndex: i,
        shardCount: 3,
        inputUri: input,
        outputUri: `${prefix}/evaluate/shard-${i}.jsonl`,
        firstRowIndex: firstRow,
        params: { $case: 'evaluate', value: p },
      });
    const shards = [
      shard(0, `${prefix}/eval-input/shard-0.jsonl`, 0, params()),
      shard(1, `${prefix}/eval-input/shard-1.jsonl`, 2, params()),
      shard(2, `${prefix}/eval-input/shard-1.jsonl`, 2, params({ goldReward: 'imdb' })),
    ];
    for (const [i, w] of shards.entries())
      await publishWork(
        js,
        workSubject('default', 'evaluate', run, 1),
        StageWork.encode(w).finish(),
        shardMsgId('default', 'evaluate', run, 1, i),
      );
    await withTimeout(done, 120_000, () => `events so far: ${JSON.stringify(events)}`);
  } finally {
    sub.unsubscribe();
    await worker.stop();
  }

  const failed = events.find((e) => e.event?.$case === 'failed');
  assert.equal(failed?.event?.$case, 'failed');
  if (failed?.event?.$case === 'failed') {
    assert.equal(failed.event.value.shardIndex, 2);
    assert.equal(failed.event.value.reason, FailureReason.FAILURE_REASON_INVALID_INPUT);
    assert.equal(failed.event.value.retryable, false);
    assert.match(failed.event.value.message, /evaluate\.gold_reward/);
  }
  const progress = events.filter((e) => e.event?.$case === 'progress');
  assert.ok(progress.length >= 2, 'progress reported');
  const shardDone = events.flatMap((e) => (e.event?.$case === 'shardDone' ? [e.event.value] : []));
  assert.deepEqual(shardDone.map((d) => d.shardIndex).sort(), [0, 1]);
  assert.deepEqual(
    shardDone.sort((a, b) => a.shardIndex - b.shardIndex).map((d) => d.items),
    [4, 8],
  );
  const rows: EvalRow[] = [];
  for (const i of [0, 1]) {
    const uri = `${prefix}/evaluate/shard-${i}.jsonl`;
    rows.push(...parseEvalRowsJsonl(await store.get(uri), uri));
  }
  sameRows(rows, whole);
  assert.equal(await store.info(`${prefix}/evaluate/shard-2.jsonl`), null);
});
