/**
 * The contract itself: buf lint is clean, the committed proto/gen is exactly what the .proto files
 * generate, every service's gRPC paths are pinned, and messages survive the wire and JSON formats
 * (oneofs, optional scalars, maps, timestamps).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  FailureReason,
  FinishReason,
  GenerateResponse,
  JobState,
  JobStatus,
  PolicyGeneratorServiceService,
  PreferenceModelServiceService,
  protoFiles,
  protoRoot,
  RewardModelServiceService,
  SamplingParams,
  Stage,
  StageEvent,
  StageManifest,
  StageWork,
  TrainingEvent,
  TrainingJobsServiceService,
  TrainingObjective,
  WatchTrainingJobResponse,
} from './index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const protoDir = join(root, 'proto');
const buf = join(root, 'node_modules/.bin/buf');

/** Every file below dir, as sorted paths relative to it. */
function filesBelow(dir: string): string[] {
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((name) => {
      const path = join(d, name);
      return statSync(path).isDirectory() ? walk(path) : [path];
    });
  return walk(dir)
    .map((path) => relative(dir, path))
    .sort();
}

test('buf lint (STANDARD + COMMENTS) is clean', () => {
  const r = spawnSync(buf, ['lint'], { cwd: protoDir, encoding: 'utf8' });
  assert.equal(r.status, 0, `buf lint failed; fix these and run npm run proto:gen:\n${r.stdout}${r.stderr}`);
});

test('proto/gen is up to date with the .proto files', () => {
  const base = mkdtempSync(join(tmpdir(), 'rlhf-proto-gen-'));
  try {
    const r = spawnSync(process.execPath, [join(root, 'scripts/gen-proto.mjs'), base], { encoding: 'utf8' });
    assert.equal(r.status, 0, `scripts/gen-proto.mjs failed:\n${r.stdout}${r.stderr}`);
    const fresh = join(base, 'gen');
    const committed = join(protoDir, 'gen');
    const want = filesBelow(fresh);
    const have = filesBelow(committed);
    const missing = want.filter((f) => !have.includes(f)).map((f) => `proto/gen/${f} is missing`);
    const extra = have.filter((f) => !want.includes(f)).map((f) => `proto/gen/${f} has no .proto source`);
    assert.deepEqual(
      [...missing, ...extra],
      [],
      'generated files differ: run `npm run proto:gen` and commit',
    );
    for (const f of want) {
      const same = readFileSync(join(committed, f)).equals(readFileSync(join(fresh, f)));
      assert.ok(same, `proto/gen/${f} is stale: run \`npm run proto:gen\` and commit the result`);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('protoFiles and protoRoot name exactly the files buf compiles', () => {
  const r = spawnSync(buf, ['ls-files'], { cwd: protoDir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(protoFiles, r.stdout.trim().split('\n').sort());
  for (const f of protoFiles) assert.ok(statSync(join(protoRoot, f)).isFile(), f);
});

test('gRPC method paths and streaming flags of every service', () => {
  const paths = (service: Record<string, { path: string; responseStream: boolean }>) =>
    Object.values(service).map((m) => `${m.path}${m.responseStream ? ' (stream)' : ''}`);
  assert.deepEqual(paths(PolicyGeneratorServiceService), [
    '/rlhf.v1.PolicyGeneratorService/Generate',
    '/rlhf.v1.PolicyGeneratorService/GenerateStream (stream)',
  ]);
  assert.deepEqual(paths(RewardModelServiceService), ['/rlhf.v1.RewardModelService/Score']);
  assert.deepEqual(paths(PreferenceModelServiceService), [
    '/rlhf.v1.PreferenceModelService/Compare',
    '/rlhf.v1.PreferenceModelService/Rank',
  ]);
  assert.deepEqual(paths(TrainingJobsServiceService), [
    '/rlhf.v1.TrainingJobsService/GetTrainingCapabilities',
    '/rlhf.v1.TrainingJobsService/StartTrainingJob',
    '/rlhf.v1.TrainingJobsService/GetTrainingJob',
    '/rlhf.v1.TrainingJobsService/WatchTrainingJob (stream)',
    '/rlhf.v1.TrainingJobsService/ListTrainingJobs',
    '/rlhf.v1.TrainingJobsService/CancelTrainingJob',
  ]);
});

const key = {
  namespace: 'default',
  run: 'sentiment-demo',
  iteration: 2,
  stage: Stage.STAGE_GENERATE,
  runUid: '6f1c1e8e-3c1a-4d0e-9a55-1f0c2b7d9e10',
};

test('StageEvent oneof cases round-trip through the wire format', () => {
  const shardDone = StageEvent.fromPartial({
    key,
    time: new Date('2026-11-23T12:00:00.125Z'),
    event: {
      $case: 'shardDone',
      value: {
        shardIndex: 3,
        outputUri: 'nats-obj://rlhf-artifacts/runs/default/sentiment-demo/iter-2/generate/shard-3.jsonl',
        items: 64,
        durationSeconds: 12.5,
      },
    },
  });
  const back = StageEvent.decode(StageEvent.encode(shardDone).finish());
  assert.deepEqual(back, shardDone);
  assert.equal(back.event?.$case, 'shardDone');

  // A stage-level failure: shard_index is an optional scalar, and unset must stay unset (not become 0).
  const failed = StageEvent.fromPartial({
    key: { ...key, stage: Stage.STAGE_JUDGE },
    time: new Date('2026-11-23T12:01:00Z'),
    event: {
      $case: 'failed',
      value: { reason: FailureReason.FAILURE_REASON_INVALID_INPUT, message: 'model: not a reward model' },
    },
  });
  const failedBack = StageEvent.decode(StageEvent.encode(failed).finish());
  assert.deepEqual(failedBack, failed);
  assert.ok(failedBack.event?.$case === 'failed' && failedBack.event.value.shardIndex === undefined);
  const shardFailed = StageEvent.fromPartial({ event: { $case: 'failed', value: { shardIndex: 0 } } });
  const shardFailedBack = StageEvent.decode(StageEvent.encode(shardFailed).finish());
  assert.ok(shardFailedBack.event?.$case === 'failed' && shardFailedBack.event.value.shardIndex === 0);
});

test('StageWork with stage params, and a StageManifest through protobuf JSON', () => {
  const work = StageWork.fromPartial({
    key: { ...key, stage: Stage.STAGE_TRAIN },
    shardIndex: 0,
    shardCount: 1,
    inputUri: 'nats-obj://rlhf-artifacts/runs/default/sentiment-demo/iter-2/pair/pairs.jsonl',
    outputUri: 'nats-obj://rlhf-models/runs/default/sentiment-demo/iter-2/policy',
    createdAt: new Date('2026-11-23T12:02:00Z'),
    params: {
      $case: 'train',
      value: {
        objective: TrainingObjective.TRAINING_OBJECTIVE_DPO,
        baseModel: { uri: 'nats-obj://rlhf-models/runs/default/sentiment-demo/iter-1/policy' },
        reference: { uri: 'nats-obj://rlhf-models/sft', digest: 'SHA-256=2jmj7l5rSw0yVb_vlWAYkK_YBwk' },
        hyperparameters: { learningRate: 1e-3, epochs: 2, batchSize: 128, warmupRatio: 0.03, shuffle: false },
        dpo: { beta: 0.1, nllWeight: 1 },
      },
    },
  });
  assert.deepEqual(StageWork.decode(StageWork.encode(work).finish()), work);

  const manifest = StageManifest.fromPartial({
    key: { ...key, stage: Stage.STAGE_JUDGE },
    shards: [{ shardIndex: 0, uri: 'nats-obj://rlhf-artifacts/a/shard-0.jsonl', items: 128 }],
    metrics: { mean_reward: 0.25, pairs: 120 },
    completedAt: new Date('2026-11-23T12:03:00Z'),
  });
  const json = JSON.parse(JSON.stringify(StageManifest.toJSON(manifest)));
  assert.equal(json.key.stage, 'STAGE_JUDGE');
  assert.equal(json.completedAt, '2026-11-23T12:03:00.000Z');
  assert.deepEqual(StageManifest.fromJSON(json), manifest);
});

test('GenerateResponse round-trips, including per-token log-probs', () => {
  const msg = GenerateResponse.fromPartial({
    results: [
      {
        promptIndex: 0,
        prompt: 'the acting',
        completions: [
          {
            text: ' was superb .',
            tokenIds: [5, 9, 12, 1],
            logprobs: [-0.5, -1.25, -0.125, -0.0625],
            finishReason: FinishReason.FINISH_REASON_EOS,
          },
          { text: ' was', tokenIds: [5], logprobs: [-0.75], finishReason: FinishReason.FINISH_REASON_LENGTH },
        ],
      },
      { promptIndex: 1, prompt: 'i really', completions: [] },
    ],
  });
  assert.deepEqual(GenerateResponse.decode(GenerateResponse.encode(msg).finish()), msg);
});

test('optional sampling fields keep presence: an explicit 0 differs from unset', () => {
  const greedyByTemperature = SamplingParams.decode(
    SamplingParams.encode(SamplingParams.create({ temperature: 0 })).finish(),
  );
  assert.equal(greedyByTemperature.temperature, 0);
  const defaults = SamplingParams.decode(SamplingParams.encode(SamplingParams.create()).finish());
  assert.equal(defaults.temperature, undefined);
  assert.equal(defaults.seed, undefined);
  assert.equal(defaults.topK, 0);
});

test('training jobs: JobStatus with labels and metrics, and a watch event', () => {
  const job = JobStatus.fromPartial({
    id: 'sentiment-demo-iter-2',
    objective: TrainingObjective.TRAINING_OBJECTIVE_DPO,
    state: JobState.JOB_STATE_RUNNING,
    step: 10,
    totalSteps: 40,
    createdAt: new Date('2026-11-23T12:02:01Z'),
    startedAt: new Date('2026-11-23T12:02:02Z'),
    labels: { 'rlhf.dev/run': 'sentiment-demo', 'rlhf.dev/iteration': '2' },
    latestMetrics: {
      step: 10,
      totalSteps: 40,
      loss: 0.61,
      chosenReward: 0.2,
      rejectedReward: -0.1,
      margin: 0.3,
    },
  });
  assert.deepEqual(JobStatus.decode(JobStatus.encode(job).finish()), job);

  const watched = WatchTrainingJobResponse.fromPartial({
    event: {
      jobId: job.id,
      time: new Date('2026-11-23T12:05:00Z'),
      event: { $case: 'finished', value: { ...job, state: JobState.JOB_STATE_SUCCEEDED } },
    },
  });
  const back = WatchTrainingJobResponse.decode(WatchTrainingJobResponse.encode(watched).finish());
  assert.deepEqual(back, watched);
  assert.equal(back.event?.event?.$case, 'finished');
  const json = TrainingEvent.toJSON(back.event ?? TrainingEvent.create()) as { jobId?: string };
  assert.equal(json.jobId, job.id);
});
