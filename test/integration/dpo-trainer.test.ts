/**
 * The dpo-trainer in-process on loopback with a real nats-server and a tiny policy: DPO through the
 * generated client on file:// and nats-obj:// artifacts (the watch stream shows steps and ends SUCCEEDED,
 * the written model loads and prefers the chosen responses more than before), SFT, two jobs queueing, cancel,
 * retried starts, bad inputs answered with their status and field while the server keeps serving, and a
 * TRAIN shard trained over NATS.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createDpoTrainerService } from '@rlhf/dpo-trainer';
import { encodePair, loadModelDir, sequenceLogps } from '@rlhf/ml-engine';
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
  DpoLossType,
  FailureReason,
  JobState,
  type JobStatus,
  Stage,
  StageEvent,
  StageWork,
  StartTrainingJobRequest as StartTrainingJobRequestCodec,
  TrainingEvent as TrainingEventCodec,
  TrainingObjective,
} from '@rlhf/proto';
import { localModelDir, modelVersion, publishModelDir } from '@rlhf/service-kit';
import { assertStatus } from '../helpers/grpc-calls.js';
import { baseModel, trainedJudge, writePairs } from '../helpers/judge-models.js';
import { recordRun } from '../helpers/run-record.js';
import { withTimeout } from '../helpers/timeout.js';
import {
  finalStatus,
  type StartJob,
  type TrainingJobsCalls,
  trainingJobsClient,
} from '../helpers/training-calls.js';

const { INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ALREADY_EXISTS } = grpc.status;

let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let service: RunningService;
let jobs: TrainingJobsCalls;
let policyDir: string;
let policyUri: string;
let pairsFile: string;
let pairsUri: string;
const stamp = Date.now();
const store = () => new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
const ref = (uri: string) => ({ uri, revision: '', digest: '' });

/** Settings under which the tiny policy learns these pairs in a few seconds. */
const hyperparameters = { learningRate: 5e-3, epochs: 2, batchSize: 8, warmupRatio: 0 };

before(async () => {
  nats = await natsForTests();
  nc = await connectNats({
    url: nats.url,
    name: 'dpo-test',
    logger: createLogger('test', { level: 'warn' }),
  });
  dir = await mkdtemp(join(tmpdir(), 'rlhf-dpo-'));
  policyDir = await baseModel(dir, 'policy', 'lm');
  policyUri = `nats-obj://rlhf-test-models/dpo-policy-${stamp}`;
  await publishModelDir(store(), policyDir, policyUri);
  pairsFile = await writePairs(join(dir, 'pairs.jsonl'), 64, 5);
  pairsUri = `nats-obj://rlhf-test-data/dpo-pairs-${stamp}.jsonl`;
  await store().put(pairsUri, new Uint8Array(await readFile(pairsFile)));
  service = await serveService(
    createDpoTrainerService({
      cacheDir: join(dir, 'cache'),
      workDir: join(dir, 'work'),
      saveEvery: 2,
      ackWaitMs: 6000,
    }),
    { host: '127.0.0.1', port: 0, natsUrl: nats.url, logLevel: 'error', artifactRoots: [dir] },
  );
  jobs = trainingJobsClient(`127.0.0.1:${service.grpcPort}`);
});

after(async () => {
  jobs?.close();
  await service?.stop();
  await nc?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

const start = (req: StartJob) => jobs.start(req);
const get = (jobId: string) => jobs.get(jobId);
const cancel = (jobId: string, reason = '') => jobs.cancel(jobId, reason);
const watch = (jobId: string, onEvent?: Parameters<TrainingJobsCalls['watch']>[1]) =>
  jobs.watch(jobId, onEvent);

/** Mean over the pairs of (log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l)). */
async function logRatioMargin(policy: string, reference: string): Promise<number> {
  const pi = await loadModelDir(policy);
  const re = await loadModelDir(reference);
  const pairs = (await readFile(pairsFile, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
  const enc = pairs.map((p) =>
    encodePair(
      pi.tokenizer,
      { prompt: { text: p.prompt }, chosen: { text: p.chosen }, rejected: { text: p.rejected } },
      pi.config.max_position_embeddings,
    ),
  );
  const rows = [...enc.map((e) => e.chosen), ...enc.map((e) => e.rejected)];
  const a = await sequenceLogps(pi.config, pi.weights, rows, pi.tokenizer.padId);
  const b = await sequenceLogps(re.config, re.weights, rows, re.tokenizer.padId);
  const n = pairs.length;
  let sum = 0;
  for (let i = 0; i < n; i++)
    sum += (a[i] as number) - (b[i] as number) - ((a[n + i] as number) - (b[n + i] as number));
  return sum / n;
}

test('DPO on file:// artifacts: the watch shows every step and ends SUCCEEDED; the model loads and its margin grew', async () => {
  const output = join(dir, 'out', 'dpo-file');
  const req: StartJob = {
    jobId: 'dpo-file',
    objective: TrainingObjective.TRAINING_OBJECTIVE_DPO,
    model: ref(`file://${policyDir}`),
    dataset: { uri: `file://${pairsFile}`, format: 0 },
    hyperparameters,
    dpo: { beta: 0.1, lossType: 0, labelSmoothing: 0, nllWeight: 0, referenceMode: 0 },
    outputUri: `file://${output}`,
    labels: { 'rlhf.dev/run': 'demo' },
  };
  const job = await start(req);
  assert.equal(job.id, 'dpo-file');
  assert.ok([JobState.JOB_STATE_QUEUED, JobState.JOB_STATE_RUNNING].includes(job.state), JobState[job.state]);
  assert.deepEqual(job.labels, { 'rlhf.dev/run': 'demo' });
  const again = await start(req);
  assert.equal(again.id, job.id, 'a retried start returns the same job');
  await assertStatus(
    start({ ...req, hyperparameters: { ...hyperparameters, learningRate: 1e-2 } }),
    ALREADY_EXISTS,
    'job_id',
    'same id, other request',
  );

  const events = await withTimeout(watch(job.id), 120_000, () => 'DPO job did not end');
  assert.equal(events[0]?.event?.$case, 'stateChanged', 'the current status comes first');
  const final = finalStatus(events);
  assert.equal(final.state, JobState.JOB_STATE_SUCCEEDED, final.message);
  assert.equal(final.output?.uri, `file://${output}`);
  const progress = events.flatMap((e) => (e.event?.$case === 'progress' ? [e.event.value] : []));
  assert.equal(progress.length, 16, '64 pairs, batch 8, 2 epochs');
  assert.deepEqual(
    progress.map((p) => p.step),
    Array.from({ length: 16 }, (_, i) => i + 1),
  );
  for (const p of progress) {
    assert.equal(p.totalSteps, 16);
    for (const v of [
      p.loss,
      p.learningRate,
      p.tokensPerSecond,
      p.etaSeconds,
      p.chosenReward,
      p.rejectedReward,
    ])
      assert.ok(Number.isFinite(v), JSON.stringify(p));
    assert.ok(p.accuracy !== undefined && p.accuracy >= 0 && p.accuracy <= 1);
    assert.ok(p.margin !== undefined);
    assert.ok(p.time instanceof Date);
  }
  assert.equal(progress.at(-1)?.etaSeconds, 0);
  assert.ok((progress.at(-1)?.epoch ?? 0) > 1.9);

  const status = await get(job.id);
  assert.equal(status.state, JobState.JOB_STATE_SUCCEEDED);
  assert.equal(status.step, 16);
  assert.equal(status.latestMetrics?.step, 16);
  assert.ok(status.startedAt && status.finishedAt);
  const margin = await logRatioMargin(output, policyDir);
  assert.ok(
    margin > 0.5,
    `the trained policy prefers chosen over rejected more than the reference: ${margin}`,
  );
  assert.equal(await stat(`${output}.partial`).catch(() => null), null, 'no checkpoint left after success');
});

test('DPO and SFT on nats-obj:// artifacts: the output is published with a digest and loads', async () => {
  const output = `nats-obj://rlhf-test-models/out/dpo-${stamp}`;
  const job = await start({
    objective: TrainingObjective.TRAINING_OBJECTIVE_DPO,
    model: ref(policyUri),
    reference: ref(policyUri),
    dataset: { uri: pairsUri, format: 0 },
    hyperparameters: { ...hyperparameters, epochs: 1 },
    outputUri: output,
  });
  assert.match(job.id, /^[0-9a-f-]{36}$/, 'a server-assigned id');
  assert.equal(job.objective, TrainingObjective.TRAINING_OBJECTIVE_DPO);
  const events = await withTimeout(watch(job.id), 120_000, () => 'nats-obj DPO job did not end');
  const final = finalStatus(events);
  assert.equal(final.state, JobState.JOB_STATE_SUCCEEDED, final.message);
  assert.equal(final.output?.uri, output);
  assert.equal(final.output?.digest, await modelVersion(store(), output));
  const local = await localModelDir(store(), output, join(dir, 'check-cache'));
  assert.ok((await logRatioMargin(local, policyDir)) > 0, 'the published model learned the pairs');

  const sftData = `nats-obj://rlhf-test-data/sft-${stamp}.jsonl`;
  const lines = ['great', 'superb', 'lovely'].map((w) =>
    JSON.stringify({ prompt: 'the film', completion: ` was ${w} .` }),
  );
  await store().put(sftData, new TextEncoder().encode(`${lines.join('\n')}\n`));
  const sft = await start({
    objective: TrainingObjective.TRAINING_OBJECTIVE_SFT,
    model: ref(policyUri),
    dataset: { uri: sftData, format: 0 },
    hyperparameters: { learningRate: 1e-2, maxSteps: 3, batchSize: 3, warmupRatio: 0 },
    outputUri: `nats-obj://rlhf-test-models/out/sft-${stamp}`,
  });
  const sftEvents = await withTimeout(watch(sft.id), 120_000, () => 'SFT job did not end');
  const sftFinal = finalStatus(sftEvents);
  assert.equal(sftFinal.state, JobState.JOB_STATE_SUCCEEDED, sftFinal.message);
  const sftProgress = sftEvents.flatMap((e) => (e.event?.$case === 'progress' ? [e.event.value] : []));
  assert.equal(sftProgress.length, 3);
  assert.equal(sftProgress[0]?.margin, undefined, 'SFT reports no DPO figures');
});

test('two jobs queue; cancel a queued job at once and a running one after its step; a new start resumes it', async () => {
  const output = join(dir, 'out', 'long');
  const longRequest: StartJob = {
    objective: TrainingObjective.TRAINING_OBJECTIVE_DPO,
    model: ref(`file://${policyDir}`),
    dataset: { uri: `file://${pairsFile}`, format: 0 },
    hyperparameters: { ...hyperparameters, maxSteps: 40 },
    outputUri: `file://${output}`,
  };
  const long = await start({ ...longRequest, jobId: 'long' });
  const waiting = await start({
    objective: TrainingObjective.TRAINING_OBJECTIVE_DPO,
    jobId: 'waiting',
    model: ref(`file://${policyDir}`),
    dataset: { uri: `file://${pairsFile}`, format: 0 },
    outputUri: `file://${join(dir, 'out', 'waiting')}`,
  });
  assert.equal(waiting.state, JobState.JOB_STATE_QUEUED);
  assert.match(waiting.message, /queued: position 1 of 1/);
  assert.equal((await get('long')).state, JobState.JOB_STATE_RUNNING);

  const watchedWaiting = watch('waiting');
  const cancelledWaiting = await cancel('waiting', 'not needed');
  assert.equal(cancelledWaiting.state, JobState.JOB_STATE_CANCELLED);
  assert.equal(cancelledWaiting.errorCode, 'CANCELLED');
  assert.match(cancelledWaiting.message, /not needed/);
  const waitingEvents = await watchedWaiting;
  assert.equal(finalStatus(waitingEvents).state, JobState.JOB_STATE_CANCELLED);

  let cancelAsked: Promise<JobStatus> | null = null;
  const events = await withTimeout(
    watch(long.id, (e) => {
      if (e.event?.$case === 'progress' && e.event.value.step >= 3 && !cancelAsked)
        cancelAsked = cancel('long');
    }),
    120_000,
    () => 'the long job did not stop',
  );
  const asked = await (cancelAsked as Promise<JobStatus> | null);
  assert.ok(asked && [JobState.JOB_STATE_RUNNING, JobState.JOB_STATE_CANCELLED].includes(asked.state));
  const final = finalStatus(events);
  assert.equal(final.state, JobState.JOB_STATE_CANCELLED, final.message);
  assert.equal(final.output, undefined);
  assert.ok(final.step >= 3 && final.step < 40, `stopped at step ${final.step}`);
  assert.equal(await stat(output).catch(() => null), null, 'nothing published at the output');
  // The checkpoint lives in the job's working directory (keyed by the output URI), never beside the output.
  const jobDir = join(
    dir,
    'work',
    createHash('sha256').update(`file://${output}`).digest('hex').slice(0, 24),
  );
  assert.ok(await stat(join(jobDir, 'model.partial', 'model.onnx')), 'the partial checkpoint is kept');
  assert.equal(await stat(`${output}.partial`).catch(() => null), null, 'nothing written beside the output');
  assert.equal((await cancel('long')).state, JobState.JOB_STATE_CANCELLED, 'cancelling again is no error');
  assert.equal(
    (await start({ ...longRequest, jobId: 'long' })).state,
    JobState.JOB_STATE_CANCELLED,
    'same id: same job',
  );

  // The same request under a new id picks up the checkpoint where the cancelled job stopped.
  const resumed = await start({ ...longRequest, jobId: 'long-resumed' });
  const resumedEvents = await withTimeout(watch(resumed.id), 120_000, () => 'the resumed job did not end');
  assert.equal(finalStatus(resumedEvents).state, JobState.JOB_STATE_SUCCEEDED);
  const steps = resumedEvents.flatMap((e) => (e.event?.$case === 'progress' ? [e.event.value.step] : []));
  assert.equal(steps[0], final.step + 1, `resumed after step ${final.step}, not from the start`);
  assert.equal(steps.at(-1), 40);
  assert.ok(await stat(join(output, 'model.onnx')), 'the model is at the output');
  assert.equal(await stat(jobDir).catch(() => null), null, 'the checkpoint is gone');
});

test('bad inputs: status and field named, failed jobs report why, and the server keeps serving', async () => {
  const ok: StartJob = {
    objective: TrainingObjective.TRAINING_OBJECTIVE_DPO,
    model: ref(`file://${policyDir}`),
    dataset: { uri: `file://${pairsFile}`, format: 0 },
    outputUri: `file://${join(dir, 'out', 'never')}`,
  };
  const rmDir = await trainedJudge(dir, 'rm');
  const cases: Array<[string, StartJob, grpc.status, string]> = [
    ['no policy', { ...ok, model: undefined }, INVALID_ARGUMENT, 'model.uri'],
    ['no dataset', { ...ok, dataset: undefined }, INVALID_ARGUMENT, 'dataset.uri'],
    ['no output', { ...ok, outputUri: '' }, INVALID_ARGUMENT, 'output_uri'],
    ['output = policy', { ...ok, outputUri: `file://${policyDir}` }, INVALID_ARGUMENT, 'output_uri'],
    ['bad scheme', { ...ok, outputUri: 's3://x/y' }, INVALID_ARGUMENT, 'output_uri'],
    [
      'beta 0',
      { ...ok, dpo: { beta: 0, lossType: 0, labelSmoothing: 0, nllWeight: 0, referenceMode: 0 } },
      INVALID_ARGUMENT,
      'dpo.beta',
    ],
    [
      'lr <= 0',
      { ...ok, hyperparameters: { learningRate: -1 } },
      INVALID_ARGUMENT,
      'hyperparameters.learning_rate',
    ],
    ['epochs 0', { ...ok, hyperparameters: { epochs: 0 } }, INVALID_ARGUMENT, 'hyperparameters.epochs'],
    ['no objective', { ...ok, objective: 0 }, INVALID_ARGUMENT, 'objective'],
    [
      'RM objective',
      { ...ok, objective: TrainingObjective.TRAINING_OBJECTIVE_REWARD_MODEL },
      FAILED_PRECONDITION,
      'objective',
    ],
    ['bad job id', { ...ok, jobId: 'Not_A_Label' }, INVALID_ARGUMENT, 'job_id'],
    ['unknown file model', { ...ok, model: ref(`file://${dir}/nope`) }, NOT_FOUND, 'model.uri'],
    ['unknown nats model', { ...ok, model: ref('nats-obj://rlhf-test-models/nope') }, NOT_FOUND, 'model.uri'],
    ['unknown reference', { ...ok, reference: ref(`file://${dir}/nope`) }, NOT_FOUND, 'reference.uri'],
    [
      'missing dataset',
      { ...ok, dataset: { uri: `file://${dir}/none.jsonl`, format: 0 } },
      NOT_FOUND,
      'dataset.uri',
    ],
    ['RM as policy', { ...ok, model: ref(`file://${rmDir}`) }, FAILED_PRECONDITION, 'model.uri'],
    ['RM as reference', { ...ok, reference: ref(`file://${rmDir}`) }, FAILED_PRECONDITION, 'reference.uri'],
    [
      'stale digest pin',
      { ...ok, model: { uri: policyUri, revision: '', digest: 'SHA-256=AAAA' } },
      FAILED_PRECONDITION,
      'model.digest',
    ],
  ];
  for (const [label, req, code, field] of cases) await assertStatus(start(req), code, field, label);
  await assertStatus(get('no-such-job'), NOT_FOUND, 'job_id', 'get unknown');
  await assertStatus(get(''), INVALID_ARGUMENT, 'job_id', 'get without id');
  await assertStatus(cancel('no-such-job'), NOT_FOUND, 'job_id', 'cancel unknown');
  await assertStatus(watch('no-such-job'), NOT_FOUND, 'job_id', 'watch unknown');

  // A dataset that exists but is broken fails the job, which says where.
  const broken = join(dir, 'broken.jsonl');
  await writeFile(broken, '{"prompt": "the film", "chosen": " was great ."}\n');
  const bad = await start({ ...ok, dataset: { uri: `file://${broken}`, format: 0 } });
  const events = await withTimeout(watch(bad.id), 60_000, () => 'the broken job did not end');
  const final = finalStatus(events);
  assert.equal(final.state, JobState.JOB_STATE_FAILED);
  assert.equal(final.errorCode, 'INVALID_ARGUMENT');
  assert.match(final.message, /rejected/, final.message);

  assert.equal((await get('dpo-file')).state, JobState.JOB_STATE_SUCCEEDED, 'still serving');
  const finished = await service.context.metrics.getSingleMetricAsString('rlhf_training_jobs_total');
  assert.match(finished, /rlhf_training_jobs_total\{[^}]*objective="dpo",state="failed"[^}]*\} 1/);
});

test('bad inputs on the wire and in the data: invalid UTF-8, empty datasets, limits; the server keeps serving', async () => {
  const { RESOURCE_EXHAUSTED } = grpc.status;
  const empty = join(dir, 'empty.jsonl');
  await writeFile(empty, '');
  const ok: StartJob = {
    objective: TrainingObjective.TRAINING_OBJECTIVE_DPO,
    model: ref(`file://${policyDir}`),
    dataset: { uri: `file://${pairsFile}`, format: 0 },
    outputUri: `file://${join(dir, 'out', 'never-2')}`,
  };
  await assertStatus(
    start({ ...ok, dataset: { uri: `file://${empty}`, format: 0 } }),
    INVALID_ARGUMENT,
    'dataset.uri',
    'empty dataset',
  );
  await assertStatus(
    start({ ...ok, hyperparameters: { maxSteps: 2_000_000 } }),
    RESOURCE_EXHAUSTED,
    'hyperparameters.max_steps',
    'steps above the limit',
  );
  // protobufjs decodes invalid UTF-8 to U+FFFD; the server refuses it naming the field.
  const rawStart = (req: StartJob) => {
    const bytes = Buffer.from(
      StartTrainingJobRequestCodec.encode(StartTrainingJobRequestCodec.fromPartial(req)).finish(),
    );
    const at = bytes.indexOf('XX');
    assert.ok(at >= 0);
    bytes[at] = 0xff;
    bytes[at + 1] = 0xfe;
    return new Promise((resolve, reject) =>
      jobs.client.makeUnaryRequest(
        '/rlhf.v1.TrainingJobsService/StartTrainingJob',
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
        (err: grpc.ServiceError | null, res?: Buffer) => (err ? reject(err) : resolve(res)),
      ),
    );
  };
  await assertStatus(
    rawStart({ ...ok, outputUri: `${ok.outputUri}XX` }),
    INVALID_ARGUMENT,
    'output_uri',
    'invalid UTF-8 in a URI',
  );
  await assertStatus(
    rawStart({ ...ok, labels: { 'rlhf.dev/run': 'XX' } }),
    INVALID_ARGUMENT,
    'labels[rlhf.dev/run]',
    'invalid UTF-8 in a label',
  );
  await assertStatus(
    rawStart({ ...ok, model: { uri: `file://${policyDir}`, revision: 'XX', digest: '' } }),
    INVALID_ARGUMENT,
    'model.revision',
    'invalid UTF-8 in a revision',
  );
  assert.equal((await get('dpo-file')).state, JobState.JOB_STATE_SUCCEEDED, 'still serving');
});

test('TRAIN stage over NATS: a shard trains one job, reports progress, stores the model, then acks; bad shards are terminated', async () => {
  const run = `dpo-train-${stamp}`;
  await recordRun(nc, run);
  const output = `nats-obj://rlhf-artifacts/runs/default/${run}/iter-1/train/model`;
  const events: StageEvent[] = [];
  const sub = nc.subscribe(`rlhf.events.default.${run}.>`);
  const done = (async () => {
    for await (const m of sub) {
      events.push(StageEvent.decode(m.data));
      const ended = events.filter((e) => e.event?.$case === 'shardDone' || e.event?.$case === 'failed');
      if (ended.length >= 2) break;
    }
  })();
  const work = (shard: number, baseModel: string) =>
    StageWork.fromPartial({
      key: { namespace: 'default', run, iteration: 1, stage: Stage.STAGE_TRAIN },
      shardIndex: shard,
      shardCount: 1,
      inputUri: pairsUri,
      outputUri: shard === 0 ? output : `${output}-bad`,
      params: {
        $case: 'train',
        value: {
          baseModel: ref(baseModel),
          hyperparameters: { ...hyperparameters, epochs: 1 },
          dpo: { beta: 0.1, nllWeight: 0.5 },
        },
      },
    });
  const { js } = await openJetStream(nc);
  await publishWork(
    js,
    workSubject('default', 'train', run, 1),
    StageWork.encode(work(0, policyUri)).finish(),
    shardMsgId('default', 'train', run, 1, 0),
  );
  await publishWork(
    js,
    workSubject('default', 'train', run, 1),
    StageWork.encode(work(1, '')).finish(),
    shardMsgId('default', 'train', run, 1, 1),
  );
  await withTimeout(
    done,
    120_000,
    () => `events so far: ${JSON.stringify(events.map((e) => e.event?.$case))}`,
  );
  sub.unsubscribe();

  const kinds = events.map((e) => e.event?.$case);
  assert.ok(kinds.includes('started'));
  const shardDone = events.find((e) => e.event?.$case === 'shardDone');
  assert.ok(shardDone?.event?.$case === 'shardDone');
  assert.equal(shardDone.event.value.outputUri, output);
  assert.equal(shardDone.event.value.items, 1);
  const progress = events.flatMap((e) => (e.event?.$case === 'progress' ? [e.event.value] : []));
  assert.ok(progress.length >= 1, 'at least the last step is reported');
  const lastProgress = progress.at(-1);
  assert.equal(lastProgress?.unit, 'steps');
  assert.equal(lastProgress?.done, 8);
  assert.equal(lastProgress?.total, 8);
  assert.ok(lastProgress?.training?.extra.nll !== undefined, 'the NLL term is reported');
  assert.ok(await modelVersion(store(), output), 'the model is stored before the ack');

  const failed = events.find((e) => e.event?.$case === 'failed');
  assert.ok(failed?.event?.$case === 'failed');
  assert.equal(failed.event.value.shardIndex, 1);
  assert.equal(failed.event.value.reason, FailureReason.FAILURE_REASON_INVALID_INPUT);
  assert.equal(failed.event.value.retryable, false);
  assert.match(failed.event.value.message, /^train\.base_model\.uri:/);
});

test('TRAIN shard whose job is cancelled under the worker: handed back, redelivered, resumed from its checkpoint', async () => {
  const run = `dpo-retry-${stamp}`;
  await recordRun(nc, run);
  const output = `nats-obj://rlhf-artifacts/runs/default/${run}/iter-1/train/model`;
  const stageEvents: StageEvent[] = [];
  const stageSub = nc.subscribe(`rlhf.events.default.${run}.>`);
  const stageDone = (async () => {
    for await (const m of stageSub) {
      stageEvents.push(StageEvent.decode(m.data));
      if (stageEvents.some((e) => e.event?.$case === 'shardDone')) break;
    }
  })();
  // The worker's jobs are visible on the job-event subject; cancel the first one after a few steps.
  const jobSub = nc.subscribe('rlhf.jobs.dpo-trainer.>');
  const stepsByJob = new Map<string, number[]>();
  const jobsSeen = (async () => {
    for await (const m of jobSub) {
      const e = TrainingEventCodec.decode(m.data);
      if (e.event?.$case !== 'progress') continue;
      const steps = stepsByJob.get(e.jobId) ?? [];
      steps.push(e.event.value.step);
      stepsByJob.set(e.jobId, steps);
      if (stepsByJob.size === 1 && steps.length === 3) await cancel(e.jobId, 'testing redelivery');
      if (e.event.value.step === e.event.value.totalSteps) break;
    }
  })();
  const work = StageWork.fromPartial({
    key: { namespace: 'default', run, iteration: 1, stage: Stage.STAGE_TRAIN },
    shardIndex: 0,
    shardCount: 1,
    inputUri: pairsUri,
    outputUri: output,
    params: {
      $case: 'train',
      value: { baseModel: ref(policyUri), hyperparameters: { ...hyperparameters, maxSteps: 30 } },
    },
  });
  const { js } = await openJetStream(nc);
  await publishWork(
    js,
    workSubject('default', 'train', run, 1),
    StageWork.encode(work).finish(),
    shardMsgId('default', 'train', run, 1, 0),
  );
  await withTimeout(
    Promise.all([stageDone, jobsSeen]),
    120_000,
    () => `stage events: ${stageEvents.map((e) => e.event?.$case).join(',')}`,
  );
  stageSub.unsubscribe();
  jobSub.unsubscribe();

  const failed = stageEvents.find((e) => e.event?.$case === 'failed');
  assert.ok(failed?.event?.$case === 'failed');
  assert.equal(failed.event.value.retryable, true);
  assert.equal(failed.event.value.reason, FailureReason.FAILURE_REASON_TRANSIENT);
  assert.match(failed.event.value.message, /testing redelivery/);
  const starts = stageEvents.flatMap((e) => (e.event?.$case === 'started' ? [e.event.value] : []));
  assert.equal(starts.length, 2, 'delivered twice');
  const [first, second] = [...stepsByJob.values()];
  assert.ok(first && second, 'two jobs');
  const stoppedAt = first.at(-1) as number;
  assert.equal(second[0], stoppedAt + 1, `the second attempt resumed after step ${stoppedAt}`);
  assert.equal(second.at(-1), 30);
  assert.ok(await modelVersion(store(), output));
});

test('capabilities name SFT and DPO; ListTrainingJobs pages every job in acceptance order and filters', async () => {
  const { TRAINING_OBJECTIVE_SFT: SFT, TRAINING_OBJECTIVE_DPO: DPO } = TrainingObjective;
  const caps = await jobs.capabilities();
  assert.deepEqual(caps.objectives, [SFT, DPO]);
  assert.deepEqual(caps.dpoLossTypes, [
    DpoLossType.DPO_LOSS_TYPE_SIGMOID,
    DpoLossType.DPO_LOSS_TYPE_IPO,
    DpoLossType.DPO_LOSS_TYPE_HINGE,
  ]);
  assert.ok(caps.maxSteps > 0 && caps.maxEpochs > 0 && caps.maxDatasetBytes > 0, JSON.stringify(caps));
  assert.equal(caps.maxQueuedJobs, 16);
  assert.equal(caps.maxPageSize, 100);

  const all = await jobs.list({ pageSize: 1000 });
  assert.equal(all.nextPageToken, '', 'every job fits one page of the maximum size');
  const ids = all.jobs.map((j) => j.id);
  for (const id of ['dpo-file', 'long', 'waiting', 'long-resumed'])
    assert.ok(ids.includes(id), `${id} in ${ids}`);
  assert.ok(ids.indexOf('long') < ids.indexOf('waiting'), 'oldest accepted first');
  const times = all.jobs.map((j) => j.createdAt?.getTime() ?? 0);
  assert.deepEqual(
    times,
    [...times].sort((a, b) => a - b),
  );

  const paged: string[] = [];
  let pageToken = '';
  do {
    const page = await jobs.list({ pageSize: 2, pageToken });
    assert.ok(page.jobs.length <= 2);
    paged.push(...page.jobs.map((j) => j.id));
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  assert.deepEqual(paged, ids, 'pages of two walk the same jobs in the same order');

  const sft = await jobs.list({ objective: SFT });
  assert.ok(sft.jobs.length >= 1);
  assert.ok(sft.jobs.every((j) => j.objective === SFT));
  const cancelled = await jobs.list({ state: JobState.JOB_STATE_CANCELLED });
  assert.ok(cancelled.jobs.some((j) => j.id === 'waiting'));
  assert.ok(cancelled.jobs.every((j) => j.state === JobState.JOB_STATE_CANCELLED));

  const first = await jobs.list({ pageSize: 1 });
  assert.notEqual(first.nextPageToken, '');
  await assertStatus(
    jobs.list({ pageSize: 1, pageToken: first.nextPageToken, objective: SFT }),
    INVALID_ARGUMENT,
    'page_token',
    'a token listed with other filters',
  );
  await assertStatus(
    jobs.list({ pageToken: Buffer.from('not a token').toString('base64url') }),
    INVALID_ARGUMENT,
    'page_token',
    'a token this server never issued',
  );
  await assertStatus(jobs.list({ pageSize: -1 }), INVALID_ARGUMENT, 'page_size', 'a negative page size');
});
