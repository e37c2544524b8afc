/**
 * Preference-model training in the preference-model service, in-process on loopback with a real
 * nats-server: StartTrainingJob (PREFERENCE_MODEL) from a policy watched to completion, the stored PM then preferring good
 * reviews over bad through Compare in both presentation orders (it learned no position), its held-out
 * accuracy reported and agreeing with Compare; the A/B order drawn per example from the seed (same seed,
 * same model; another seed, another model); bad requests answered with their status and field while the
 * server keeps serving; and a PREFERENCE_MODEL shard trained over NATS.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadModelDir } from '@rlhf/ml-engine';
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  createLogger,
  joinArtifactUri,
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
  DatasetFormat,
  FailureReason,
  JobState,
  PreferenceModelServiceClient,
  RankRequest,
  RankResponse,
  Stage,
  StageWork,
  StartTrainingJobRequest as StartTrainingJobRequestCodec,
  StartTrainingJobResponse,
  TrainingObjective,
} from '@rlhf/proto';
import { localModelDir, modelVersion, publishModelDir, type TrainingMetricsFile } from '@rlhf/service-kit';
import { assertStatus, unaryCall } from '../helpers/grpc-calls.js';
import { badWords, baseModel, goodWords, writePairs } from '../helpers/judge-models.js';
import { recordRun } from '../helpers/run-record.js';
import { withTimeout } from '../helpers/timeout.js';
import {
  finalStatus,
  followStage,
  progressOf,
  rawUnary,
  type StartJob,
  type TrainingJobsCalls,
  trainingJobsClient,
  withInvalidUtf8,
} from '../helpers/training-calls.js';

const { INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION } = grpc.status;

let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let service: RunningService;
let client: PreferenceModelServiceClient;
let jobs: TrainingJobsCalls;
let policyUri: string;
let rmUri: string;
let pairsUri: string;
let evalFile: string;
let evalUri: string;
let trainedPm: string;
const stamp = Date.now();
const store = () => new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
const ref = (uri: string) => ({ uri, revision: '', digest: '' });
const dataset = (uri: string) => ({ uri, format: DatasetFormat.DATASET_FORMAT_UNSPECIFIED });

/** 256 pairs, batch 16: 16 steps an epoch; the tiny LM learns to answer A or B within a few epochs. */
const hyperparameters = { learningRate: 1e-2, epochs: 6, batchSize: 16, warmupRatio: 0 };

before(async () => {
  nats = await natsForTests();
  nc = await connectNats({
    url: nats.url,
    name: 'pm-train-test',
    logger: createLogger('test', { level: 'warn' }),
  });
  dir = await mkdtemp(join(tmpdir(), 'rlhf-pm-train-'));
  policyUri = `nats-obj://rlhf-test-models/pm-train-policy-${stamp}`;
  await publishModelDir(store(), await baseModel(dir, 'policy', 'lm', 5), policyUri);
  rmUri = `nats-obj://rlhf-test-models/pm-train-rm-${stamp}`;
  await publishModelDir(store(), await baseModel(dir, 'rm', 'scalar', 6), rmUri);
  const pairsFile = await writePairs(join(dir, 'pairs.jsonl'), 256, 21);
  pairsUri = `nats-obj://rlhf-test-data/pm-train-pairs-${stamp}.jsonl`;
  await store().put(pairsUri, new Uint8Array(await readFile(pairsFile)));
  evalFile = await writePairs(join(dir, 'eval.jsonl'), 40, 22);
  evalUri = `nats-obj://rlhf-test-data/pm-train-eval-${stamp}.jsonl`;
  await store().put(evalUri, new Uint8Array(await readFile(evalFile)));
  service = await serveService(
    createPreferenceModelService({
      cacheDir: join(dir, 'cache'),
      training: { workDir: join(dir, 'work'), saveEvery: 0 },
      ackWaitMs: 6000,
    }),
    { host: '127.0.0.1', port: 0, natsUrl: nats.url, logLevel: 'error', artifactRoots: [dir] },
  );
  client = new PreferenceModelServiceClient(
    `127.0.0.1:${service.grpcPort}`,
    grpc.credentials.createInsecure(),
  );
  jobs = trainingJobsClient(`127.0.0.1:${service.grpcPort}`);
});

after(async () => {
  client?.close();
  jobs?.close();
  await service?.stop();
  await nc?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A training request of this service's objective; the fields are TrainingJobsService's. */
const train = (req: StartJob) =>
  jobs.start({ objective: TrainingObjective.TRAINING_OBJECTIVE_PREFERENCE_MODEL, ...req });
const get = (jobId: string) => jobs.get(jobId);
const cancel = (jobId: string, reason = '') => jobs.cancel(jobId, reason);
const watch = (jobId: string, onEvent?: Parameters<TrainingJobsCalls['watch']>[1]) =>
  jobs.watch(jobId, onEvent);
const compare = (req: Partial<CompareRequest>) =>
  unaryCall(client.compare.bind(client), CompareRequestCodec.fromPartial(req));
const rank = (req: Partial<RankRequest>) => unaryCall(client.rank.bind(client), RankRequest.fromPartial(req));

/** Held-out accuracy by Compare: the fraction of eval pairs with P(chosen > rejected) > 0.5. */
async function compareAccuracy(modelUri: string): Promise<number> {
  const pairs = (await readFile(evalFile, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
  const answers = await Promise.all(
    pairs.map((p) =>
      compare({ model: ref(modelUri), prompt: p.prompt, responseA: p.chosen, responseB: p.rejected }),
    ),
  );
  return answers.filter((a) => a.probABetter > 0.5).length / pairs.length;
}

test('StartTrainingJob (PREFERENCE_MODEL) from a policy: watched to SUCCEEDED; the PM prefers good in both orders; held-out accuracy reported', async () => {
  const output = `nats-obj://rlhf-test-models/out/pm-${stamp}`;
  const job = await train({
    jobId: 'pm-from-policy',
    model: ref(policyUri),
    dataset: dataset(pairsUri),
    evalDataset: dataset(evalUri),
    hyperparameters,
    outputUri: output,
  });
  assert.equal(job.objective, TrainingObjective.TRAINING_OBJECTIVE_PREFERENCE_MODEL);
  const events = await withTimeout(watch(job.id), 80_000, () => 'the PM job did not end');
  const final = finalStatus(events);
  assert.equal(final.state, JobState.JOB_STATE_SUCCEEDED, final.message);
  assert.equal(final.output?.digest, await modelVersion(store(), output));
  const progress = progressOf(events);
  assert.equal(progress.length, 97, '96 steps, then the held-out figures');
  assert.deepEqual(
    progress.slice(-2).map((p) => p.step),
    [96, 96],
  );
  assert.equal(progress[0]?.chosenReward, undefined, 'a PM reports no rewards');
  const evalAccuracy = progress.at(-1)?.extra.eval_accuracy as number;
  assert.ok(evalAccuracy > 0.8, `held-out accuracy ${evalAccuracy}`);
  assert.equal(progress.at(-1)?.extra.eval_pairs, 40);
  assert.equal(progress.at(-1)?.extra.eval_skipped, 0);
  const metrics = JSON.parse(
    new TextDecoder().decode(await store().get(joinArtifactUri(output, 'metrics.json'))),
  ) as TrainingMetricsFile;
  assert.equal(metrics.eval.eval_accuracy, evalAccuracy);
  assert.ok(Math.abs((await compareAccuracy(output)) - evalAccuracy) <= 1 / 40, 'Compare agrees');

  for (const good of goodWords)
    for (const bad of badWords) {
      const c = await compare({
        model: ref(output),
        prompt: 'the film',
        responseA: ` was ${good} .`,
        responseB: ` was ${bad} .`,
      });
      assert.ok(
        c.probAFirst > 0.5 && c.probASecond > 0.5,
        `${good} over ${bad} in both orders: ${JSON.stringify(c)}`,
      );
    }
  trainedPm = output;
});

/** The largest absolute difference between two published models' weights. */
async function weightDistance(a: string, b: string): Promise<number> {
  const load = async (uri: string) =>
    (await loadModelDir(await localModelDir(store(), uri, join(dir, 'check-cache')))).weights;
  const [wa, wb] = await Promise.all([load(a), load(b)]);
  let max = 0;
  for (const [name, x] of wa) {
    const y = wb.get(name) as Float32Array;
    for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs((x[i] as number) - (y[i] as number)));
  }
  return max;
}

test('the A/B order of each example is drawn from the seed: same seed, same weights; another seed, other weights', async () => {
  const outputs: string[] = [];
  for (const [i, seed] of [7, 7, 8].entries()) {
    const output = `nats-obj://rlhf-test-models/out/pm-seed-${stamp}-${i}`;
    const job = await train({
      model: ref(policyUri),
      dataset: dataset(pairsUri),
      // Data order fixed, so the seed's only effect is which response each example shows first.
      hyperparameters: { ...hyperparameters, maxSteps: 3, seed, shuffle: false },
      outputUri: output,
    });
    assert.equal(
      finalStatus(await withTimeout(watch(job.id), 30_000, () => 'seed job')).state,
      JobState.JOB_STATE_SUCCEEDED,
    );
    outputs.push(output);
  }
  const [a, b, c] = outputs as [string, string, string];
  const same = await weightDistance(a, b);
  const other = await weightDistance(a, c);
  assert.ok(same < 1e-6, `the same seed gives the same model (max weight difference ${same})`);
  assert.ok(
    other > 1e-4,
    `another seed shows the responses in another order (max weight difference ${other})`,
  );
});

test('bad StartTrainingJob, Compare and Rank requests: status and field named; the server keeps serving', async () => {
  const empty = join(dir, 'empty.jsonl');
  await writeFile(empty, '');
  const ok: StartJob = {
    model: ref(policyUri),
    dataset: dataset(pairsUri),
    outputUri: `nats-obj://rlhf-test-models/out/pm-never-${stamp}`,
  };
  const cases: Array<[string, StartJob, grpc.status, string]> = [
    [
      'an objective of another service',
      { ...ok, objective: TrainingObjective.TRAINING_OBJECTIVE_SFT },
      FAILED_PRECONDITION,
      'objective',
    ],
    ['no base model', { ...ok, model: undefined }, INVALID_ARGUMENT, 'model.uri'],
    ['no preferences', { ...ok, dataset: undefined }, INVALID_ARGUMENT, 'dataset.uri'],
    [
      'output = eval set',
      { ...ok, evalDataset: dataset(ok.outputUri as string) },
      INVALID_ARGUMENT,
      'output_uri',
    ],
    ['epochs 0', { ...ok, hyperparameters: { epochs: 0 } }, INVALID_ARGUMENT, 'hyperparameters.epochs'],
    ['unknown base', { ...ok, model: ref('nats-obj://rlhf-test-models/none') }, NOT_FOUND, 'model.uri'],
    [
      'missing eval set',
      { ...ok, evalDataset: dataset(`file://${dir}/none.jsonl`) },
      NOT_FOUND,
      'eval_dataset.uri',
    ],
    ['empty preferences', { ...ok, dataset: dataset(`file://${empty}`) }, INVALID_ARGUMENT, 'dataset.uri'],
    ['reward model as base', { ...ok, model: ref(rmUri) }, FAILED_PRECONDITION, 'model.uri'],
  ];
  for (const [label, req, code, field] of cases) await assertStatus(train(req), code, field, label);
  await assertStatus(get('no-such-job'), NOT_FOUND, 'job_id', 'get unknown');
  await assertStatus(cancel('no-such-job'), NOT_FOUND, 'job_id', 'cancel unknown');
  await assertStatus(watch('no-such-job'), NOT_FOUND, 'job_id', 'watch unknown');

  const rawTrain = rawUnary(
    jobs.client,
    '/rlhf.v1.TrainingJobsService/StartTrainingJob',
    withInvalidUtf8(
      StartTrainingJobRequestCodec.encode(
        StartTrainingJobRequestCodec.fromPartial({
          ...ok,
          objective: TrainingObjective.TRAINING_OBJECTIVE_PREFERENCE_MODEL,
          dataset: dataset(`${pairsUri}XX`),
        }),
      ).finish(),
      'XX',
    ),
    StartTrainingJobResponse.decode,
  );
  await assertStatus(rawTrain, INVALID_ARGUMENT, 'dataset.uri', 'invalid UTF-8 in a URI');

  const pm = ref(trainedPm ?? policyUri);
  await assertStatus(
    rank({ model: ref(rmUri), prompt: 'the film', responses: ['a', 'b'] }),
    FAILED_PRECONDITION,
    'model.uri',
    'reward model given to Rank',
  );
  await assertStatus(
    rank({ model: ref('nats-obj://rlhf-test-models/none'), prompt: 'the film', responses: ['a', 'b'] }),
    NOT_FOUND,
    'model.uri',
    'unknown model given to Rank',
  );
  const rawRank = rawUnary(
    client,
    '/rlhf.v1.PreferenceModelService/Rank',
    withInvalidUtf8(
      RankRequest.encode(
        RankRequest.fromPartial({ model: pm, prompt: 'the film', responses: ['a', 'XX', 'c'] }),
      ).finish(),
      'XX',
    ),
    RankResponse.decode,
  );
  await assertStatus(rawRank, INVALID_ARGUMENT, 'responses[1]', 'invalid UTF-8 in Rank');
  // U+FFFD sent as valid UTF-8 (EF BF BD) is text like any other: only bad bytes are refused.
  const replacement = await rank({
    model: pm,
    prompt: 'the film',
    responses: [' was great .', ' was \uFFFD .'],
  });
  assert.equal(replacement.ranking.length, 2, 'a real U+FFFD is ranked');

  const still = await rank({ model: pm, prompt: 'the film', responses: [' was great .', ' was dull .'] });
  assert.equal(still.ranking.length, 2, 'still serving');
});

test('PREFERENCE_MODEL stage over NATS: a shard trains a PM, reports eval accuracy, stores it, then acks; a reward-model base is terminated', async () => {
  const run = `pm-stage-${stamp}`;
  await recordRun(nc, run);
  const output = `nats-obj://rlhf-artifacts/runs/default/${run}/iter-0/preference-model/model`;
  const { events, done } = followStage(
    nc,
    run,
    (ev) => ev.filter((e) => e.event?.$case === 'shardDone' || e.event?.$case === 'failed').length >= 2,
  );
  const work = (shard: number, base: string) =>
    StageWork.fromPartial({
      key: { namespace: 'default', run, iteration: 0, stage: Stage.STAGE_PREFERENCE_MODEL },
      shardIndex: shard,
      shardCount: 1,
      inputUri: pairsUri,
      outputUri: shard === 0 ? output : `${output}-bad`,
      params: {
        $case: 'train',
        value: {
          objective: TrainingObjective.TRAINING_OBJECTIVE_PREFERENCE_MODEL,
          baseModel: ref(base),
          hyperparameters,
          evalDataset: dataset(evalUri),
        },
      },
    });
  const { js } = await openJetStream(nc);
  for (const [i, base] of [policyUri, rmUri].entries())
    await publishWork(
      js,
      workSubject('default', 'preference-model', run, 0),
      StageWork.encode(work(i, base)).finish(),
      shardMsgId('default', 'preference-model', run, 0, i),
    );
  await withTimeout(
    done,
    80_000,
    () => `events so far: ${JSON.stringify(events.map((e) => e.event?.$case))}`,
  );

  const shardDone = events.find((e) => e.event?.$case === 'shardDone');
  assert.ok(shardDone?.event?.$case === 'shardDone');
  assert.equal(shardDone.event.value.outputUri, output);
  const last = events.flatMap((e) => (e.event?.$case === 'progress' ? [e.event.value] : [])).at(-1);
  assert.equal(last?.done, 96);
  const evalAccuracy = last?.training?.extra.eval_accuracy as number;
  assert.ok(evalAccuracy > 0.8, `the shard reports held-out accuracy: ${evalAccuracy}`);
  const metrics = JSON.parse(
    new TextDecoder().decode(await store().get(joinArtifactUri(output, 'metrics.json'))),
  ) as TrainingMetricsFile;
  assert.equal(metrics.eval.eval_accuracy, evalAccuracy, '<output>/metrics.json holds the same figure');
  const c = await compare({
    model: ref(output),
    prompt: 'the film',
    responseA: ' was superb .',
    responseB: ' was dull .',
  });
  assert.ok(c.probABetter > 0.5, 'the stored PM serves Compare');

  const failed = events.find((e) => e.event?.$case === 'failed');
  assert.ok(failed?.event?.$case === 'failed');
  assert.equal(failed.event.value.shardIndex, 1);
  assert.equal(failed.event.value.reason, FailureReason.FAILURE_REASON_INVALID_INPUT);
  assert.equal(failed.event.value.retryable, false);
  assert.match(failed.event.value.message, /^train\.base_model\.uri:/);
});

test('GetTrainingCapabilities: this process trains PREFERENCE_MODEL only, with no DPO losses', async () => {
  const caps = await jobs.capabilities();
  assert.deepEqual(caps.objectives, [TrainingObjective.TRAINING_OBJECTIVE_PREFERENCE_MODEL]);
  assert.deepEqual(caps.dpoLossTypes, []);
  const listed = await jobs.list({ objective: TrainingObjective.TRAINING_OBJECTIVE_PREFERENCE_MODEL });
  assert.ok(listed.jobs.length > 0, 'the jobs of the tests above are listed');
  assert.ok(listed.jobs.every((j) => j.objective === TrainingObjective.TRAINING_OBJECTIVE_PREFERENCE_MODEL));
});
