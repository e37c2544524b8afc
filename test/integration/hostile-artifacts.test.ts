/**
 * A hostile client against the artifact sandbox, over real gRPC on loopback and a real nats-server: a
 * dpo-trainer, a reward-model and a policy-generator started with one --artifact-root are asked to write
 * outside it (a path outside, `..`, a symlink leading out), onto things the platform did not make (a
 * user's directory, a file), and to read system files and files outside the root — by gRPC and by
 * StageWork published on NATS. Each case checks the status and field, that no error carries what a file
 * holds, that a file, a directory and nothing at all outside the root are refused alike, and that nothing
 * outside the root (nor the user's things inside it) changed: names, sizes, mtimes and contents.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createDpoTrainerService } from '@rlhf/dpo-trainer';
import {
  ARTIFACT_MARKER,
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
import { createPolicyGeneratorService } from '@rlhf/policy-generator';
import {
  FailureReason,
  GenerateRequest,
  JobState,
  type JobStatus,
  JudgeType,
  PolicyGeneratorServiceClient,
  RewardModelServiceClient,
  ScoreRequest,
  Stage,
  StageEvent,
  StageWork,
  StartTrainingJobRequest,
  type TrainingHyperparameters,
  TrainingJobsServiceClient,
  TrainingObjective,
} from '@rlhf/proto';
import { createRewardModelService } from '@rlhf/reward-model';
import { unaryCall } from '../helpers/grpc-calls.js';
import { baseModel, writePairs } from '../helpers/judge-models.js';
import { recordRun } from '../helpers/run-record.js';
import { withTimeout } from '../helpers/timeout.js';

const SECRET = 'TOP-SECRET-7f3a9c';
const { PERMISSION_DENIED, ALREADY_EXISTS } = grpc.status;

let nats: TestNats;
let nc: NatsConnection;
let base: string;
let root: string;
let outside: string;
let trainer: RunningService;
let rm_: RunningService;
let generator: RunningService;
let gen: PolicyGeneratorServiceClient;
let dpo: TrainingJobsServiceClient;
let rmClient: RewardModelServiceClient;
/** The reward-model process's TrainingJobsService. */
let rmJobs: TrainingJobsServiceClient;
let policyUri: string;
let rmUri: string;
let pairsUri: string;
const stamp = Date.now();
const ref = (uri: string) => ({ uri, revision: '', digest: '' });
const hyper = { learningRate: 1e-3, epochs: 1, batchSize: 8, warmupRatio: 0, maxSteps: 2 };

before(async () => {
  nats = await natsForTests();
  nc = await connectNats({
    url: nats.url,
    name: 'hostile-test',
    logger: createLogger('test', { level: 'warn' }),
  });
  base = await mkdtemp(join(tmpdir(), 'rlhf-hostile-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  await mkdir(root);
  await mkdir(join(outside, 'existing-dir'), { recursive: true });
  // What lies outside the root: a secret dataset, a user's directory, a plain file.
  await writeFile(join(outside, 'secret.jsonl'), `${SECRET}\n{"prompt":"${SECRET}"}\n`);
  await writeFile(join(outside, 'existing-dir', 'keep.txt'), 'keep me\n');
  await writeFile(join(outside, 'plain.txt'), 'a plain file\n');
  // Inside the root: the user's own directory and file (not platform-made), a symlink leading out, data.
  await mkdir(join(root, 'users-dir'));
  await writeFile(join(root, 'users-dir', 'notes.txt'), 'the user wrote this\n');
  await writeFile(join(root, 'users-file.txt'), 'a user file\n');
  await writeFile(join(root, 'secret-in-root.txt'), `${SECRET} not json\n`);
  await symlink(outside, join(root, 'link-out'));
  const policyDir = await baseModel(root, 'policy', 'lm');
  const rmDir = await baseModel(root, 'rm', 'scalar');
  await writePairs(join(root, 'pairs.jsonl'), 16, 3);
  policyUri = `file://${policyDir}`;
  rmUri = `file://${rmDir}`;
  pairsUri = `file://${join(root, 'pairs.jsonl')}`;

  const opts = {
    host: '127.0.0.1',
    port: 0,
    natsUrl: nats.url,
    logLevel: 'silent' as const,
    artifactRoots: [root],
  };
  trainer = await serveService(
    createDpoTrainerService({
      cacheDir: join(base, 'cache'),
      workDir: join(base, 'work-dpo'),
      ackWaitMs: 6000,
    }),
    opts,
  );
  rm_ = await serveService(
    createRewardModelService({
      cacheDir: join(base, 'cache'),
      training: { workDir: join(base, 'work-rm') },
      ackWaitMs: 6000,
    }),
    opts,
  );
  generator = await serveService(createPolicyGeneratorService({ cacheDir: join(base, 'cache') }), opts);
  gen = new PolicyGeneratorServiceClient(
    `127.0.0.1:${generator.grpcPort}`,
    grpc.credentials.createInsecure(),
  );
  dpo = new TrainingJobsServiceClient(`127.0.0.1:${trainer.grpcPort}`, grpc.credentials.createInsecure());
  rmClient = new RewardModelServiceClient(`127.0.0.1:${rm_.grpcPort}`, grpc.credentials.createInsecure());
  rmJobs = new TrainingJobsServiceClient(`127.0.0.1:${rm_.grpcPort}`, grpc.credentials.createInsecure());
});

after(async () => {
  dpo?.close();
  rmClient?.close();
  rmJobs?.close();
  gen?.close();
  await generator?.stop();
  await trainer?.stop();
  await rm_?.stop();
  await nc?.close();
  await nats?.stop();
  await rm(base, { recursive: true, force: true });
});

type Snapshot = Record<string, string>;

/** Every entry below `dir` (symlinks not followed): kind, size, mtime, and a file's content digest. */
async function snapshot(dir: string, prefix = ''): Promise<Snapshot> {
  const out: Snapshot = {};
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    const s = await lstat(path);
    const key = `${prefix}${name}`;
    if (s.isSymbolicLink()) out[key] = `link -> ${await readlink(path)} @${s.mtimeMs}`;
    else if (s.isDirectory()) {
      out[key] = `dir @${s.mtimeMs}`;
      Object.assign(out, await snapshot(path, `${key}/`));
    } else {
      const digest = createHash('sha256')
        .update(await readFile(path))
        .digest('hex');
      out[key] = `file ${s.size} @${s.mtimeMs} ${digest}`;
    }
  }
  return out;
}

/** What must not change: all of `outside`, and the user's own things inside the root. */
async function guarded(): Promise<Snapshot> {
  return {
    ...(await snapshot(outside, 'outside/')),
    ...(await snapshot(join(root, 'users-dir'), 'root/users-dir/')),
    'root/users-file.txt': (await snapshot(root))['users-file.txt'] as string,
    'root/link-out': (await snapshot(root))['link-out'] as string,
  };
}

/** The call fails with `code`, its message names `field` first and never carries the secret. */
async function refused(
  call: Promise<unknown>,
  code: grpc.status,
  field: string,
  label: string,
): Promise<string> {
  let details = '';
  await assert.rejects(call, (err: grpc.ServiceError) => {
    assert.equal(
      err.code,
      code,
      `${label}: ${grpc.status[err.code]} (${err.details}), want ${grpc.status[code]}`,
    );
    assert.ok(err.details.startsWith(`${field}:`), `${label}: "${err.details}" should name ${field}`);
    assert.ok(!err.details.includes(SECRET) && !err.details.includes('root:x:'), `${label}: leaks content`);
    details = err.details;
    return true;
  });
  return details;
}

type StartRequest = Omit<Partial<StartTrainingJobRequest>, 'hyperparameters' | 'dpo'> & {
  hyperparameters?: Partial<TrainingHyperparameters>;
};
const startDpo = (req: StartRequest) =>
  unaryCall(dpo.startTrainingJob.bind(dpo), StartTrainingJobRequest.fromPartial(req)).then(
    (r) => r.job as JobStatus,
  );
const trainRm = (req: StartRequest) =>
  unaryCall(rmJobs.startTrainingJob.bind(rmJobs), StartTrainingJobRequest.fromPartial(req)).then(
    (r) => r.job as JobStatus,
  );
const dpoOk = (): StartRequest => ({
  objective: TrainingObjective.TRAINING_OBJECTIVE_DPO,
  model: ref(policyUri),
  dataset: { uri: pairsUri, format: 0 },
  hyperparameters: hyper,
  outputUri: `file://${root}/models/fresh-${Math.random().toString(36).slice(2)}`,
});
const rmOk = (): StartRequest => ({
  objective: TrainingObjective.TRAINING_OBJECTIVE_REWARD_MODEL,
  model: ref(rmUri),
  dataset: { uri: pairsUri, format: 0 },
  hyperparameters: hyper,
  outputUri: `file://${root}/models/rm-${Math.random().toString(36).slice(2)}`,
});

async function finished(get: () => Promise<JobStatus>): Promise<JobStatus> {
  for (;;) {
    const job = await get();
    if (
      [JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED].includes(
        job.state,
      )
    )
      return job;
    await new Promise((r) => setTimeout(r, 100));
  }
}
const dpoJob = (id: string) =>
  finished(() => unaryCall(dpo.getTrainingJob.bind(dpo), { jobId: id }).then((r) => r.job as JobStatus));

test('gRPC writes outside the root, through `..` or a symlink, or onto what the platform did not make: refused, nothing changed', async () => {
  const before = await guarded();
  const outputs: Array<[string, string, grpc.status]> = [
    ['out of root', `file://${outside}/new-model`, PERMISSION_DENIED],
    ['out of root, an existing directory', `file://${outside}/existing-dir`, PERMISSION_DENIED],
    ['dot-dot', `file://${root}/../outside/new-model`, PERMISSION_DENIED],
    ['encoded dot-dot', `file://${root}/%2e%2e/outside/new-model`, PERMISSION_DENIED],
    ['symlink leading out', `file://${root}/link-out/new-model`, PERMISSION_DENIED],
    ['system directory', 'file:///etc/rlhf-model', PERMISSION_DENIED],
    ["the user's directory in the root", `file://${root}/users-dir`, ALREADY_EXISTS],
    ["the user's file in the root", `file://${root}/users-file.txt`, ALREADY_EXISTS],
  ];
  for (const [label, outputUri, code] of outputs) {
    await refused(startDpo({ ...dpoOk(), outputUri }), code, 'output_uri', `DPO StartTrainingJob: ${label}`);
    await refused(
      trainRm({ ...rmOk(), outputUri }),
      code,
      'output_uri',
      `REWARD_MODEL StartTrainingJob: ${label}`,
    );
  }
  // Models from outside the root are not read either.
  await refused(
    startDpo({ ...dpoOk(), model: ref(`file://${outside}/existing-dir`) }),
    PERMISSION_DENIED,
    'model.uri',
    'policy out of root',
  );
  await refused(
    trainRm({ ...rmOk(), model: ref(`file://${root}/link-out`) }),
    PERMISSION_DENIED,
    'model.uri',
    'base model through a symlink',
  );
  assert.deepEqual(await guarded(), before);
  assert.equal((await lstat(join(root, 'users-file.txt'))).isFile(), true, 'the file is still a file');
});

test('gRPC reads of system files and files outside the root: one status and message shape, no content', async () => {
  const before = await guarded();
  await refused(
    startDpo({ ...dpoOk(), dataset: { uri: 'file:///etc/passwd', format: 0 } }),
    PERMISSION_DENIED,
    'dataset.uri',
    '/etc/passwd',
  );
  await refused(
    trainRm({ ...rmOk(), dataset: { uri: 'file:///etc/shadow', format: 0 } }),
    PERMISSION_DENIED,
    'dataset.uri',
    '/etc/shadow',
  );
  // A file, a directory and nothing at all outside the root answer alike: existence cannot be probed.
  const shapes = new Set<string>();
  for (const path of [
    join(outside, 'secret.jsonl'),
    join(outside, 'existing-dir'),
    join(outside, 'absent.jsonl'),
  ]) {
    const details = await refused(
      startDpo({ ...dpoOk(), dataset: { uri: `file://${path}`, format: 0 } }),
      PERMISSION_DENIED,
      'dataset.uri',
      path,
    );
    shapes.add(details.replace(path, '<path>'));
    await refused(
      trainRm({ ...rmOk(), evalDataset: { uri: `file://${path}`, format: 0 } }),
      PERMISSION_DENIED,
      'eval_dataset.uri',
      path,
    );
  }
  assert.equal(shapes.size, 1, [...shapes].join(' | '));
  // The policy generator's and the judges' model refs: outside the root, a system directory, a symlink out.
  for (const model of [`file://${outside}/existing-dir`, `file://${root}/link-out`])
    await refused(
      unaryCall(
        gen.generate.bind(gen),
        GenerateRequest.fromPartial({ model: ref(model), prompts: ['the film'] }),
      ),
      PERMISSION_DENIED,
      'model.uri',
      `Generate with ${model}`,
    );
  for (const model of [`file://${outside}/existing-dir`, 'file:///etc', `file://${root}/link-out`])
    await refused(
      unaryCall(
        rmClient.score.bind(rmClient),
        ScoreRequest.fromPartial({
          model: ref(model),
          items: [{ prompt: 'the film', responses: [' was great .'] }],
        }),
      ),
      PERMISSION_DENIED,
      'model.uri',
      `Score with ${model}`,
    );

  // A file inside the root that is not JSONL: the job fails naming the file and the line, not the content.
  const job = await startDpo({
    ...dpoOk(),
    dataset: { uri: `file://${root}/secret-in-root.txt`, format: 0 },
  });
  const ended = await withTimeout(dpoJob(job.id), 60_000, () => 'the job did not end');
  assert.equal(ended.state, JobState.JOB_STATE_FAILED);
  assert.equal(ended.errorCode, 'INVALID_ARGUMENT');
  assert.match(ended.message, /secret-in-root\.txt:1: not valid JSON/);
  assert.ok(!ended.message.includes(SECRET), ended.message);
  assert.deepEqual(await guarded(), before);
});

test('a platform-made output may be written, then replaced whole; nothing is left beside it', async () => {
  const before = await guarded();
  const out = join(root, 'models', 'replaced');
  for (const id of ['first', 'second']) {
    const job = await startDpo({ ...dpoOk(), jobId: id, outputUri: `file://${out}` });
    const ended = await withTimeout(dpoJob(job.id), 60_000, () => `job ${id} did not end`);
    assert.equal(ended.state, JobState.JOB_STATE_SUCCEEDED, ended.message);
    assert.ok((await lstat(join(out, ARTIFACT_MARKER))).isFile(), 'the output carries the platform marker');
  }
  assert.deepEqual(
    (await readdir(join(root, 'models'))).filter((n) => n.startsWith('replaced')),
    ['replaced'],
  );
  assert.deepEqual(await guarded(), before);
});

/** Publishes `works` for `stage` of a run and collects the shards' terminal events. */
async function shardOutcomes(
  stage: 'train' | 'judge' | 'reward-model' | 'generate' | 'evaluate',
  works: StageWork[],
): Promise<StageEvent[]> {
  const run = works[0]?.key?.run as string;
  const namespace = works[0]?.key?.namespace || 'default';
  // A worker executes work only for runs it finds recorded, as a started run would be.
  await recordRun(nc, run, namespace);
  const events: StageEvent[] = [];
  const sub = nc.subscribe(`rlhf.events.${namespace}.${run}.>`);
  const done = (async () => {
    for await (const m of sub) {
      const e = StageEvent.decode(m.data);
      if (e.event?.$case === 'shardDone' || e.event?.$case === 'failed') events.push(e);
      if (events.length >= works.length) break;
    }
  })();
  const { js } = await openJetStream(nc);
  for (const w of works)
    await publishWork(
      js,
      workSubject(namespace, stage, run, 1),
      StageWork.encode(w).finish(),
      shardMsgId(namespace, stage, run, 1, w.shardIndex),
    );
  await withTimeout(done, 30_000, () => `events so far: ${JSON.stringify(events.map((e) => e.event))}`);
  sub.unsubscribe();
  return events.sort((a, b) => shardOf(a) - shardOf(b));
}
function shardOf(e: StageEvent): number {
  const ev = e.event;
  if (ev?.$case === 'failed') return ev.value.shardIndex ?? -1;
  if (ev?.$case === 'shardDone') return ev.value.shardIndex;
  return -1;
}

/** Each event failed for good (terminated, not retried) naming `fields[i]`, with no content in it. */
function assertRefused(events: StageEvent[], fields: string[]): void {
  assert.equal(events.length, fields.length);
  for (const [i, e] of events.entries()) {
    assert.equal(e.event?.$case, 'failed', `shard ${i}: ${JSON.stringify(e.event)}`);
    if (e.event?.$case !== 'failed') continue;
    const f = e.event.value;
    assert.equal(f.reason, FailureReason.FAILURE_REASON_INVALID_INPUT, `shard ${i}: ${f.message}`);
    assert.equal(f.retryable, false);
    assert.ok(f.message.startsWith(`${fields[i]}:`), `shard ${i}: "${f.message}" should name ${fields[i]}`);
    assert.ok(
      !f.message.includes(SECRET) && !f.message.includes('root:x:'),
      `shard ${i} leaks: ${f.message}`,
    );
  }
}

test('StageWork on NATS: TRAIN, REWARD_MODEL, JUDGE, GENERATE and EVALUATE shards that read or write outside the root are terminated, nothing changed', async () => {
  const before = await guarded();
  const run = `hostile-${stamp}`;
  const data = `nats-obj://rlhf-artifacts/runs/default/${run}/data/gen.jsonl`;
  const prompts = `nats-obj://rlhf-artifacts/runs/default/${run}/data/prompts.jsonl`;
  const store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
  await store.put(prompts, new TextEncoder().encode('{"prompt":"the film"}\n'));
  await store.put(
    data,
    new TextEncoder().encode(`${JSON.stringify({ prompt: 'the film', responses: [' was great .'] })}\n`),
  );

  const train = (shard: number, stage: Stage, inputUri: string, outputUri: string, model = policyUri) =>
    StageWork.fromPartial({
      key: { namespace: 'default', run, iteration: 1, stage },
      shardIndex: shard,
      shardCount: 1,
      inputUri,
      outputUri,
      params: { $case: 'train', value: { baseModel: ref(model), hyperparameters: hyper } },
    });
  const trainEvents = await shardOutcomes('train', [
    train(0, Stage.STAGE_TRAIN, pairsUri, `file://${outside}/shard-model`),
    train(1, Stage.STAGE_TRAIN, 'file:///etc/passwd', `file://${root}/models/t1`),
    train(2, Stage.STAGE_TRAIN, pairsUri, `file://${root}/../outside/t2`),
    train(3, Stage.STAGE_TRAIN, pairsUri, `file://${root}/link-out/t3`),
    train(4, Stage.STAGE_TRAIN, pairsUri, `file://${root}/users-dir`),
    train(5, Stage.STAGE_TRAIN, `file://${outside}/secret.jsonl`, `file://${root}/models/t5`),
    train(6, Stage.STAGE_TRAIN, pairsUri, `file://${root}/models/t6`, `file://${outside}/existing-dir`),
  ]);
  assertRefused(trainEvents, [
    'output_uri',
    'input_uri',
    'output_uri',
    'output_uri',
    'output_uri',
    'input_uri',
    'train.base_model.uri',
  ]);

  const rmEvents = await shardOutcomes('reward-model', [
    train(0, Stage.STAGE_REWARD_MODEL, pairsUri, `file://${outside}/rm-model`, rmUri),
    train(1, Stage.STAGE_REWARD_MODEL, `file://${outside}/absent.jsonl`, `file://${root}/models/r1`, rmUri),
  ]);
  assertRefused(rmEvents, ['output_uri', 'input_uri']);

  const judge = (shard: number, inputUri: string, outputUri: string, model = rmUri) =>
    StageWork.fromPartial({
      key: { namespace: 'default', run, iteration: 1, stage: Stage.STAGE_JUDGE },
      shardIndex: shard,
      shardCount: 1,
      inputUri,
      outputUri,
      params: {
        $case: 'judge',
        value: { model: ref(model), type: JudgeType.JUDGE_TYPE_REWARD, lengthPenalty: 0 },
      },
    });
  const judgeEvents = await shardOutcomes('judge', [
    judge(0, `file://${outside}/secret.jsonl`, `file://${root}/judged/s0.jsonl`),
    judge(1, data, `file://${outside}/judged.jsonl`),
    judge(2, data, `file://${root}/users-dir/judged.jsonl`),
    judge(3, data, `file://${root}/users-file.txt`),
    judge(4, data, `file://${root}/judged/s4.jsonl`, `file://${root}/link-out/existing-dir`),
    judge(5, 'file:///etc/passwd', `file://${root}/judged/s5.jsonl`),
  ]);
  assertRefused(judgeEvents, [
    'input_uri',
    'output_uri',
    'output_uri',
    'output_uri',
    'judge.model.uri',
    'input_uri',
  ]);

  const generate = (shard: number, inputUri: string, outputUri: string, model = policyUri) =>
    StageWork.fromPartial({
      key: { namespace: 'default', run, iteration: 1, stage: Stage.STAGE_GENERATE },
      shardIndex: shard,
      shardCount: 1,
      inputUri,
      outputUri,
      params: { $case: 'generate', value: { policy: ref(model), n: 1 } },
    });
  const genEvents = await shardOutcomes('generate', [
    generate(0, `file://${outside}/secret.jsonl`, `file://${root}/generated/g0.jsonl`),
    generate(1, prompts, `file://${outside}/generated.jsonl`),
    generate(2, prompts, `file://${root}/%2e%2e/outside/g2.jsonl`),
    generate(3, prompts, `file://${root}/generated/g3.jsonl`, `file://${outside}/existing-dir`),
  ]);
  assertRefused(genEvents, ['input_uri', 'output_uri', 'output_uri', 'generate.policy.uri']);

  const evaluate = (shard: number, inputUri: string, outputUri: string) =>
    StageWork.fromPartial({
      key: { namespace: 'default', run, iteration: 1, stage: Stage.STAGE_EVALUATE },
      shardIndex: shard,
      shardCount: 1,
      inputUri,
      outputUri,
      params: { $case: 'evaluate', value: { policy: ref(policyUri), baseline: ref(policyUri), n: 1 } },
    });
  const evalEvents = await shardOutcomes('evaluate', [
    evaluate(0, 'file:///etc/passwd', `file://${root}/evaluated/e0.jsonl`),
    evaluate(1, prompts, `file://${root}/link-out/e1.jsonl`),
  ]);
  assertRefused(evalEvents, ['input_uri', 'output_uri']);
  assert.deepEqual(await guarded(), before);
  // Refused before any work: no output directory was made for the refused shards.
  for (const made of ['judged', 'generated', 'evaluated'])
    assert.equal(await lstat(join(root, made)).catch(() => null), null, made);
});
