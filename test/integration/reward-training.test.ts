/**
 * Reward-model training in the reward-model service, in-process on loopback with a real nats-server:
 * StartTrainingJob (REWARD_MODEL) from a policy (its LM head replaced by a scalar head) watched to completion, the stored
 * model then scoring good reviews above bad through Score, and its held-out accuracy reported in the last
 * progress event and in <output>/metrics.json agreeing with what Score says; a reward model trained further
 * on file://; a cancelled job resumed from its checkpoint; bad requests answered with their status and field
 * while the server keeps serving; and a REWARD_MODEL shard trained over NATS.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { headTypeOf, loadModelDir } from '@rlhf/ml-engine';
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
import {
  DatasetFormat,
  FailureReason,
  JobState,
  type JobStatus,
  RewardModelServiceClient,
  ScoreRequest,
  ScoreResponse,
  Stage,
  StageWork,
  StartTrainingJobRequest as StartTrainingJobRequestCodec,
  StartTrainingJobResponse,
  TrainingObjective,
} from '@rlhf/proto';
import { createRewardModelService } from '@rlhf/reward-model';
import {
  localModelDir,
  modelVersion,
  publishModelDir,
  readTrainingMetricsFile,
  type TrainingMetricsFile,
} from '@rlhf/service-kit';
import { assertStatus, unaryCall } from '../helpers/grpc-calls.js';
import { badWords, baseModel, goodWords, trainedJudge, writePairs } from '../helpers/judge-models.js';
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

const { INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, RESOURCE_EXHAUSTED, ALREADY_EXISTS } = grpc.status;

let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let service: RunningService;
let client: RewardModelServiceClient;
let jobs: TrainingJobsCalls;
let policyDir: string;
let policyUri: string;
let pairsFile: string;
let pairsUri: string;
let evalFile: string;
let evalUri: string;
const stamp = Date.now();
const store = () => new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
const ref = (uri: string) => ({ uri, revision: '', digest: '' });
const dataset = (uri: string) => ({ uri, format: DatasetFormat.DATASET_FORMAT_UNSPECIFIED });

/** 96 pairs, batch 16: 6 steps an epoch; the tiny model separates good from bad within 3 epochs. */
const hyperparameters = { learningRate: 5e-3, epochs: 3, batchSize: 16, warmupRatio: 0 };

before(async () => {
  nats = await natsForTests();
  nc = await connectNats({
    url: nats.url,
    name: 'rm-train-test',
    logger: createLogger('test', { level: 'warn' }),
  });
  dir = await mkdtemp(join(tmpdir(), 'rlhf-rm-train-'));
  policyDir = await baseModel(dir, 'policy', 'lm', 4);
  policyUri = `nats-obj://rlhf-test-models/rm-train-policy-${stamp}`;
  await publishModelDir(store(), policyDir, policyUri);
  pairsFile = await writePairs(join(dir, 'pairs.jsonl'), 96, 11);
  pairsUri = `nats-obj://rlhf-test-data/rm-train-pairs-${stamp}.jsonl`;
  await store().put(pairsUri, new Uint8Array(await readFile(pairsFile)));
  evalFile = await writePairs(join(dir, 'eval.jsonl'), 40, 12);
  evalUri = `nats-obj://rlhf-test-data/rm-train-eval-${stamp}.jsonl`;
  await store().put(evalUri, new Uint8Array(await readFile(evalFile)));
  service = await serveService(
    createRewardModelService({
      cacheDir: join(dir, 'cache'),
      training: { workDir: join(dir, 'work'), saveEvery: 2, limits: { maxBatchSize: 256 } },
      ackWaitMs: 6000,
    }),
    { host: '127.0.0.1', port: 0, natsUrl: nats.url, logLevel: 'error', artifactRoots: [dir] },
  );
  client = new RewardModelServiceClient(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure());
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
  jobs.start({ objective: TrainingObjective.TRAINING_OBJECTIVE_REWARD_MODEL, ...req });
const get = (jobId: string) => jobs.get(jobId);
const cancel = (jobId: string, reason = '') => jobs.cancel(jobId, reason);
const watch = (jobId: string, onEvent?: Parameters<TrainingJobsCalls['watch']>[1]) =>
  jobs.watch(jobId, onEvent);
const score = (req: Partial<ScoreRequest>) =>
  unaryCall(client.score.bind(client), ScoreRequest.fromPartial(req));

/** Held-out accuracy by Score: the fraction of eval pairs whose chosen response scores higher. */
async function scoreAccuracy(modelUri: string): Promise<number> {
  const pairs = (await readFile(evalFile, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
  const res = await score({
    model: ref(modelUri),
    items: pairs.map((p) => ({ prompt: p.prompt, responses: [p.chosen, p.rejected] })),
  });
  const right = res.results.filter((r) => (r.rewards[0] as number) > (r.rewards[1] as number)).length;
  return right / pairs.length;
}

test('StartTrainingJob (REWARD_MODEL) from a policy on nats-obj://: watched to SUCCEEDED, the stored RM scores good above bad, held-out accuracy reported', async () => {
  const output = `nats-obj://rlhf-test-models/out/rm-${stamp}`;
  const job = await train({
    jobId: 'rm-from-policy',
    model: ref(policyUri),
    dataset: dataset(pairsUri),
    evalDataset: dataset(evalUri),
    hyperparameters,
    outputUri: output,
    labels: { 'rlhf.dev/run': 'demo' },
  });
  assert.equal(job.objective, TrainingObjective.TRAINING_OBJECTIVE_REWARD_MODEL);
  assert.deepEqual(job.labels, { 'rlhf.dev/run': 'demo' });
  const events = await withTimeout(watch(job.id), 60_000, () => 'the RM job did not end');
  assert.equal(events[0]?.event?.$case, 'stateChanged', 'the current status comes first');
  const final = finalStatus(events);
  assert.equal(final.state, JobState.JOB_STATE_SUCCEEDED, final.message);
  assert.equal(final.output?.uri, output);
  assert.equal(final.output?.digest, await modelVersion(store(), output));

  const progress = progressOf(events);
  assert.deepEqual(
    progress.map((p) => p.step),
    [...Array.from({ length: 18 }, (_, i) => i + 1), 18],
    '96 pairs, batch 16, 3 epochs; then the held-out figures at the last step',
  );
  for (const p of progress.slice(0, -1)) {
    assert.equal(p.totalSteps, 18);
    assert.ok(Number.isFinite(p.loss) && p.chosenReward !== undefined && p.margin !== undefined);
    assert.ok(p.accuracy !== undefined && p.accuracy >= 0 && p.accuracy <= 1);
    assert.equal(p.extra.eval_accuracy, undefined, 'held-out figures only after training');
  }
  const evaluated = progress.at(-1);
  const evalAccuracy = evaluated?.extra.eval_accuracy as number;
  assert.equal(evaluated?.extra.eval_pairs, 40);
  assert.ok(Number.isFinite(evaluated?.extra.eval_loss), 'eval_loss reported');
  assert.ok(evalAccuracy > 0.8, `held-out accuracy ${evalAccuracy}`);
  assert.equal((await get(job.id)).latestMetrics?.extra.eval_accuracy, evalAccuracy, 'kept in the status');

  // The stored model is a reward model (scalar head) that Score serves; its accuracy is what was reported.
  const local = await localModelDir(store(), output, join(dir, 'check-cache'));
  assert.equal(headTypeOf((await loadModelDir(local)).config), 'scalar');
  const res = await score({
    model: ref(output),
    items: [{ prompt: 'the film', responses: [...goodWords, ...badWords].map((w) => ` was ${w} .`) }],
  });
  const rewards = res.results[0]?.rewards as number[];
  assert.ok(
    Math.min(...rewards.slice(0, 3)) > Math.max(...rewards.slice(3)),
    `good above bad: ${rewards.join(', ')}`,
  );
  assert.ok(
    Math.abs((await scoreAccuracy(output)) - evalAccuracy) <= 1 / 40,
    'Score agrees with eval_accuracy',
  );
  const metrics = (await readTrainingMetricsFile(local)) as TrainingMetricsFile;
  assert.ok(metrics, 'metrics.json is part of the published model');
  assert.equal(metrics.eval.eval_accuracy, evalAccuracy);
  assert.equal(metrics.steps, 18);
  assert.equal(metrics.evalDataset, evalUri);
});

test('StartTrainingJob (REWARD_MODEL) on file://: a reward model trains further; retried starts; metrics.json in place, no leftovers', async () => {
  const rmDir = await trainedJudge(dir, 'rm');
  const output = join(dir, 'out', 'rm-further');
  const req: StartJob = {
    jobId: 'rm-further',
    model: ref(`file://${rmDir}`),
    dataset: dataset(`file://${pairsFile}`),
    evalDataset: dataset(`file://${evalFile}`),
    hyperparameters: { ...hyperparameters, epochs: 1 },
    outputUri: `file://${output}`,
  };
  const job = await train(req);
  assert.equal((await train(req)).id, job.id, 'a retried start returns the same job');
  await assertStatus(
    train({ ...req, hyperparameters: { ...hyperparameters, epochs: 2 } }),
    ALREADY_EXISTS,
    'job_id',
    'same id, other request',
  );
  const final = finalStatus(await withTimeout(watch(job.id), 60_000, () => 'the file:// RM job did not end'));
  assert.equal(final.state, JobState.JOB_STATE_SUCCEEDED, final.message);
  assert.equal(final.output?.uri, `file://${output}`);
  const metrics = await readTrainingMetricsFile(output);
  assert.ok(metrics && (metrics.eval.eval_accuracy ?? 0) > 0.8, JSON.stringify(metrics));
  assert.ok(await stat(join(output, 'model.onnx')));
  const siblings = (await readdir(join(dir, 'out'))).filter((n) => n.startsWith('rm-further'));
  assert.deepEqual(siblings, ['rm-further'], 'no temporary or partial directories left');
  assert.ok((await scoreAccuracy(`file://${output}`)) > 0.8);
});

test('a cancelled RM job (policy base, eval set) resumes from its checkpoint under a new id', async () => {
  const req: StartJob = {
    model: ref(policyUri),
    dataset: dataset(pairsUri),
    evalDataset: dataset(evalUri),
    hyperparameters: { ...hyperparameters, maxSteps: 30 },
    outputUri: `nats-obj://rlhf-test-models/out/rm-resumed-${stamp}`,
  };
  let asked: Promise<JobStatus> | null = null;
  const first = await train({ ...req, jobId: 'rm-long' });
  const events = await withTimeout(
    watch(first.id, (e) => {
      if (e.event?.$case === 'progress' && e.event.value.step >= 3 && !asked)
        asked = cancel(first.id, 'test');
    }),
    60_000,
    () => 'the long RM job did not stop',
  );
  await (asked as Promise<JobStatus> | null);
  const stopped = finalStatus(events);
  assert.equal(stopped.state, JobState.JOB_STATE_CANCELLED, stopped.message);
  assert.ok(stopped.step >= 3 && stopped.step < 30, `stopped at ${stopped.step}`);
  assert.equal(
    await store().info(joinArtifactUri(req.outputUri as string, 'manifest.json')),
    null,
    'nothing published',
  );

  const resumed = await train({ ...req, jobId: 'rm-long-resumed' });
  const resumedEvents = await withTimeout(watch(resumed.id), 60_000, () => 'the resumed RM job did not end');
  assert.equal(finalStatus(resumedEvents).state, JobState.JOB_STATE_SUCCEEDED);
  const steps = progressOf(resumedEvents).map((p) => p.step);
  assert.equal(steps[0], stopped.step + 1, `resumed after step ${stopped.step}`);
  assert.equal(steps.at(-1), 30);
});

test('bad StartTrainingJob and Score requests: status and field named; the server keeps serving', async () => {
  const empty = join(dir, 'empty.jsonl');
  await writeFile(empty, '');
  const blank = join(dir, 'blank.jsonl');
  await writeFile(blank, '\n\n');
  const pmLike = `file://${policyDir}`;
  const ok: StartJob = {
    model: ref(policyUri),
    dataset: dataset(pairsUri),
    outputUri: `nats-obj://rlhf-test-models/out/rm-never-${stamp}`,
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
    ['no output', { ...ok, outputUri: '' }, INVALID_ARGUMENT, 'output_uri'],
    ['output = base', { ...ok, outputUri: policyUri }, INVALID_ARGUMENT, 'output_uri'],
    ['bad scheme', { ...ok, outputUri: 's3://x/y' }, INVALID_ARGUMENT, 'output_uri'],
    [
      'SFT data',
      { ...ok, dataset: { uri: pairsUri, format: DatasetFormat.DATASET_FORMAT_SFT } },
      INVALID_ARGUMENT,
      'dataset.format',
    ],
    [
      'lr <= 0',
      { ...ok, hyperparameters: { learningRate: 0 } },
      INVALID_ARGUMENT,
      'hyperparameters.learning_rate',
    ],
    [
      'batch above the limit',
      { ...ok, hyperparameters: { batchSize: 257 } },
      RESOURCE_EXHAUSTED,
      'hyperparameters.batch_size',
    ],
    ['bad job id', { ...ok, jobId: 'Bad_Id' }, INVALID_ARGUMENT, 'job_id'],
    ['unknown base', { ...ok, model: ref('nats-obj://rlhf-test-models/none') }, NOT_FOUND, 'model.uri'],
    ['unknown file base', { ...ok, model: ref(`file://${dir}/none`) }, NOT_FOUND, 'model.uri'],
    [
      'missing preferences',
      { ...ok, dataset: dataset('nats-obj://rlhf-test-data/none.jsonl') },
      NOT_FOUND,
      'dataset.uri',
    ],
    ['empty preferences', { ...ok, dataset: dataset(`file://${empty}`) }, INVALID_ARGUMENT, 'dataset.uri'],
    [
      'empty eval set',
      { ...ok, evalDataset: dataset(`file://${empty}`) },
      INVALID_ARGUMENT,
      'eval_dataset.uri',
    ],
    [
      'stale digest pin',
      { ...ok, model: { uri: policyUri, revision: '', digest: 'SHA-256=AAAA' } },
      FAILED_PRECONDITION,
      'model.digest',
    ],
  ];
  for (const [label, req, code, field] of cases) await assertStatus(train(req), code, field, label);
  await assertStatus(get('no-such-job'), NOT_FOUND, 'job_id', 'get unknown');
  await assertStatus(get(''), INVALID_ARGUMENT, 'job_id', 'get without id');
  await assertStatus(cancel('no-such-job'), NOT_FOUND, 'job_id', 'cancel unknown');
  await assertStatus(watch('no-such-job'), NOT_FOUND, 'job_id', 'watch unknown');

  // Invalid UTF-8 on the wire (protobufjs decodes it to U+FFFD): refused naming the field.
  const rawTrain = (req: StartJob) =>
    rawUnary(
      jobs.client,
      '/rlhf.v1.TrainingJobsService/StartTrainingJob',
      withInvalidUtf8(
        StartTrainingJobRequestCodec.encode(
          StartTrainingJobRequestCodec.fromPartial({
            objective: TrainingObjective.TRAINING_OBJECTIVE_REWARD_MODEL,
            ...req,
          }),
        ).finish(),
        'XX',
      ),
      StartTrainingJobResponse.decode,
    );
  await assertStatus(
    rawTrain({ ...ok, outputUri: `${ok.outputUri}-XX` }),
    INVALID_ARGUMENT,
    'output_uri',
    'UTF-8 uri',
  );
  await assertStatus(
    rawTrain({ ...ok, labels: { 'rlhf.dev/run': 'XX' } }),
    INVALID_ARGUMENT,
    'labels[rlhf.dev/run]',
    'UTF-8 label',
  );
  const rawScore = rawUnary(
    client,
    '/rlhf.v1.RewardModelService/Score',
    withInvalidUtf8(
      ScoreRequest.encode(
        ScoreRequest.fromPartial({
          model: ref(policyUri),
          items: [{ prompt: 'p', responses: ['ok', 'XX'] }],
        }),
      ).finish(),
      'XX',
    ),
    ScoreResponse.decode,
  );
  await assertStatus(rawScore, INVALID_ARGUMENT, 'items[0].responses[1]', 'UTF-8 response');
  // U+FFFD sent as valid UTF-8 (EF BF BD) is text like any other: only bad bytes are refused.
  const replacement = await score({
    model: ref(`nats-obj://rlhf-test-models/out/rm-${stamp}`), // trained by the first test
    items: [{ prompt: 'the film', responses: [' was great \uFFFD .'] }],
  });
  assert.equal(replacement.results[0]?.rewards.length, 1, 'a real U+FFFD is scored');
  await assertStatus(
    score({ model: ref(pmLike), items: [{ prompt: 'p', responses: ['x'] }] }),
    FAILED_PRECONDITION,
    'model.uri',
    'policy given to Score',
  );

  // A dataset with no records but some bytes fails the job, naming the field.
  const blankJob = await train({ ...ok, dataset: dataset(`file://${blank}`) });
  const failed = finalStatus(
    await withTimeout(watch(blankJob.id), 30_000, () => 'the blank job did not end'),
  );
  assert.equal(failed.state, JobState.JOB_STATE_FAILED);
  assert.equal(failed.errorCode, 'INVALID_ARGUMENT');
  assert.match(failed.message, /^dataset\.uri: empty dataset/, failed.message);

  assert.equal((await get('rm-from-policy')).state, JobState.JOB_STATE_SUCCEEDED, 'still serving');
});

test('REWARD_MODEL stage over NATS: a shard trains from the policy, reports eval accuracy, stores the model, then acks; bad shards are terminated', async () => {
  const run = `rm-stage-${stamp}`;
  await recordRun(nc, run);
  const output = `nats-obj://rlhf-artifacts/runs/default/${run}/iter-0/reward-model/model`;
  const { events, done } = followStage(
    nc,
    run,
    (ev) => ev.filter((e) => e.event?.$case === 'shardDone' || e.event?.$case === 'failed').length >= 3,
  );
  const work = (shard: number, params: StageWork['params']) =>
    StageWork.fromPartial({
      key: { namespace: 'default', run, iteration: 0, stage: Stage.STAGE_REWARD_MODEL },
      shardIndex: shard,
      shardCount: 1,
      inputUri: pairsUri,
      outputUri: shard === 0 ? output : `${output}-${shard}`,
      params,
    });
  const good = work(0, {
    $case: 'train',
    value: {
      objective: TrainingObjective.TRAINING_OBJECTIVE_UNSPECIFIED,
      baseModel: ref(policyUri),
      hyperparameters: {
        ...hyperparameters,
        epochs: 2,
        maxSteps: 0,
        optimizer: 0,
        schedule: 0,
        weightDecay: 0,
      },
      evalDataset: dataset(evalUri),
    },
  });
  const unknownBase = work(1, {
    $case: 'train',
    value: { objective: 0, baseModel: ref('nats-obj://rlhf-test-models/none') },
  });
  const wrongParams = work(2, { $case: 'pair', value: { strategy: 0, seed: 0, minMargin: 0 } });
  const { js } = await openJetStream(nc);
  for (const [i, w] of [good, unknownBase, wrongParams].entries())
    await publishWork(
      js,
      workSubject('default', 'reward-model', run, 0),
      StageWork.encode(w).finish(),
      shardMsgId('default', 'reward-model', run, 0, i),
    );
  await withTimeout(
    done,
    60_000,
    () => `events so far: ${JSON.stringify(events.map((e) => e.event?.$case))}`,
  );

  const shardDone = events.find((e) => e.event?.$case === 'shardDone');
  assert.ok(shardDone?.event?.$case === 'shardDone');
  assert.equal(shardDone.event.value.shardIndex, 0);
  assert.equal(shardDone.event.value.outputUri, output);
  assert.equal(shardDone.event.value.items, 1);
  const progress = events.flatMap((e) => (e.event?.$case === 'progress' ? [e.event.value] : []));
  const last = progress.at(-1);
  assert.equal(last?.unit, 'steps');
  assert.equal(last?.done, 12);
  assert.equal(last?.total, 12);
  const evalAccuracy = last?.training?.extra.eval_accuracy as number;
  assert.ok(evalAccuracy > 0.8, `the shard reports held-out accuracy: ${evalAccuracy}`);
  const metrics = JSON.parse(
    new TextDecoder().decode(await store().get(joinArtifactUri(output, 'metrics.json'))),
  ) as TrainingMetricsFile;
  assert.equal(metrics.eval.eval_accuracy, evalAccuracy, 'and next to the model, in <output>/metrics.json');
  assert.ok((await scoreAccuracy(output)) > 0.8, 'the stored model scores through Score');

  const failures = events.flatMap((e) => (e.event?.$case === 'failed' ? [e.event.value] : []));
  assert.equal(failures.length, 2);
  const byShard = new Map(failures.map((f) => [f.shardIndex, f]));
  assert.equal(byShard.get(1)?.reason, FailureReason.FAILURE_REASON_NOT_FOUND);
  assert.match(byShard.get(1)?.message ?? '', /^train\.base_model\.uri:/);
  assert.equal(byShard.get(2)?.reason, FailureReason.FAILURE_REASON_INVALID_INPUT);
  assert.match(byShard.get(2)?.message ?? '', /^params:/);
  for (const f of failures) assert.equal(f.retryable, false);
});

test('GetTrainingCapabilities: this process trains REWARD_MODEL only, with no DPO losses', async () => {
  const caps = await jobs.capabilities();
  assert.deepEqual(caps.objectives, [TrainingObjective.TRAINING_OBJECTIVE_REWARD_MODEL]);
  assert.deepEqual(caps.dpoLossTypes, []);
  const listed = await jobs.list({ objective: TrainingObjective.TRAINING_OBJECTIVE_REWARD_MODEL });
  assert.ok(listed.jobs.length > 0, 'the jobs of the tests above are listed');
  assert.ok(listed.jobs.every((j) => j.objective === TrainingObjective.TRAINING_OBJECTIVE_REWARD_MODEL));
});
