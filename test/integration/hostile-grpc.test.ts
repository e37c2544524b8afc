/**
 * Hostile gRPC clients against `rlhf serve dpo-trainer` run as a user runs it (a child process on
 * loopback, a tiny file:// policy): one server in plaintext with a bearer token file and tight training
 * bounds, one with mutual TLS, a client allow-list and the token in RLHF_AUTH_TOKEN. Each case checks the
 * status and the field named, and that the server keeps serving; at the end, neither server's output holds
 * the token. Certificates are made by the real openssl (test/helpers/test-pki.ts).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { bearerInterceptor, checkHealth, listServices } from '@rlhf/platform';
import {
  JobState,
  type JobStatus,
  StartTrainingJobRequest,
  type TrainingHyperparameters,
  TrainingJobsServiceClient,
  TrainingObjective,
} from '@rlhf/proto';
import { runCli, startCli } from '../helpers/cli.js';
import { assertStatus, unaryCall } from '../helpers/grpc-calls.js';
import { baseModel, writePairs } from '../helpers/judge-models.js';
import { makeTestPki, type TestPki } from '../helpers/test-pki.js';
import { withTimeout } from '../helpers/timeout.js';
import { rawUnary } from '../helpers/training-calls.js';

const { UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, NOT_FOUND, UNAVAILABLE } =
  grpc.status;

const token = randomBytes(24).toString('hex');
let dir: string;
let pki: TestPki;
let tokenFile: string;
let policyUri: string;
let pairsUri: string;
let plain: { child: ChildProcess; address: string; output: () => string };
let mtls: { child: ChildProcess; address: string; output: () => string };
const clients: grpc.Client[] = [];

async function serve(args: string[], env: NodeJS.ProcessEnv) {
  const started = await startCli(
    [
      ...['serve', 'dpo-trainer', '--host', '127.0.0.1', '--port', '0', '--metrics-port', 'off'],
      // The test's models, data and outputs live in its directory: the service's only artifact root.
      ...['--artifact-root', dir, ...args],
    ],
    /dpo-trainer listening on 127\.0\.0\.1:(\d+)/,
    { RLHF_WORK_DIR: join(dir, 'work'), RLHF_MODEL_CACHE: join(dir, 'cache'), LOG_LEVEL: 'debug', ...env },
  );
  return { ...started, address: `127.0.0.1:${started.match[1]}` };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-hostile-'));
  pki = makeTestPki(join(dir, 'pki'));
  tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${token}\n`);
  policyUri = `file://${await baseModel(dir, 'policy', 'lm')}`;
  pairsUri = `file://${await writePairs(join(dir, 'pairs.jsonl'), 64, 5)}`;
  [plain, mtls] = await Promise.all([
    serve(
      [
        ...['--auth-token-file', tokenFile, '--max-message-mb', '1'],
        ...['--train-max-steps', '20', '--train-max-epochs', '5'],
        ...['--train-max-queued', '1', '--train-max-dataset-mb', '1'],
      ],
      {},
    ),
    serve(
      [
        ...['--tls-cert', pki.server.cert, '--tls-key', pki.server.key, '--tls-client-ca', pki.ca.cert],
        ...['--tls-allowed-clients', 'dns:allowed-client,uri:spiffe://rlhf.test/ns/rlhf/sa/other'],
      ],
      { RLHF_AUTH_TOKEN: token },
    ),
  ]);
});

after(async () => {
  for (const c of clients) c.close();
  for (const s of [plain, mtls]) {
    if (!s) continue;
    const exited = new Promise((resolve) => s.child.once('exit', resolve));
    s.child.kill('SIGTERM');
    await exited;
  }
  await rm(dir, { recursive: true, force: true });
});

function trainer(
  address: string,
  o: { token?: string; credentials?: grpc.ChannelCredentials } = {},
): TrainingJobsServiceClient {
  const client = new TrainingJobsServiceClient(address, o.credentials ?? grpc.credentials.createInsecure(), {
    ...(o.token === undefined ? {} : { interceptors: [bearerInterceptor(o.token)] }),
    // The server certificate names localhost (and 127.0.0.1, which TLS SNI may not carry).
    ...(o.credentials ? { 'grpc.ssl_target_name_override': 'localhost' } : {}),
  });
  clients.push(client);
  return client;
}

const getJob = (client: TrainingJobsServiceClient, jobId = 'no-such-job') =>
  unaryCall(client.getTrainingJob.bind(client), { jobId }, 10_000);

type StartRequest = Omit<Partial<StartTrainingJobRequest>, 'hyperparameters'> & {
  hyperparameters?: Partial<TrainingHyperparameters>;
};
const start = (client: TrainingJobsServiceClient, req: StartRequest) =>
  unaryCall(client.startTrainingJob.bind(client), StartTrainingJobRequest.fromPartial(req)).then(
    (r) => r.job as JobStatus,
  );
const ref = (uri: string) => ({ uri, revision: '', digest: '' });
let outputs = 0;
const request = (hyperparameters: Partial<TrainingHyperparameters>, dataset = pairsUri): StartRequest => ({
  objective: TrainingObjective.TRAINING_OBJECTIVE_DPO,
  model: ref(policyUri),
  dataset: { uri: dataset, format: 0 },
  outputUri: `file://${join(dir, 'out', `model-${++outputs}`)}`,
  hyperparameters,
});

async function finished(client: TrainingJobsServiceClient, jobId: string): Promise<JobStatus> {
  return withTimeout(
    (async () => {
      for (;;) {
        const job = (await getJob(client, jobId)).job as JobStatus;
        if (
          [JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED].includes(
            job.state,
          )
        )
          return job;
        await new Promise((r) => setTimeout(r, 100));
      }
    })(),
    60_000,
    () => `job ${jobId} did not end`,
  );
}

test('bearer token: missing or wrong is UNAUTHENTICATED naming the metadata key; the right one passes', async () => {
  const anonymous = trainer(plain.address);
  await assertStatus(getJob(anonymous), UNAUTHENTICATED, 'authorization', 'no token');
  await assert.rejects(getJob(anonymous), (e: grpc.ServiceError) => {
    assert.match(e.details, /Bearer <token>/);
    assert.match(e.details, /--auth-token-file/);
    return true;
  });
  // One character changed (never to itself: a random token may already end in 0).
  const wrong = trainer(plain.address, { token: `${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}` });
  await assertStatus(getJob(wrong), UNAUTHENTICATED, 'authorization', 'a wrong token');
  const basic = new TrainingJobsServiceClient(plain.address, grpc.credentials.createInsecure());
  clients.push(basic);
  const md = new grpc.Metadata();
  md.set('authorization', `Basic ${Buffer.from(`u:${token}`).toString('base64')}`);
  await assertStatus(
    new Promise((resolve, reject) =>
      basic.getTrainingJob({ jobId: 'x' }, md, (err, res) => (err ? reject(err) : resolve(res))),
    ),
    UNAUTHENTICATED,
    'authorization',
    'another scheme',
  );
  // The right token reaches the handler: an unknown job is NOT_FOUND, not an auth error.
  await assertStatus(getJob(trainer(plain.address, { token })), NOT_FOUND, 'job_id', 'the right token');
});

test('a streaming rpc without the token is refused before the handler runs', async () => {
  const call = trainer(plain.address).watchTrainingJob({ jobId: 'no-such-job' });
  const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
    call.on('error', resolve);
    call.on('data', () => reject(new Error('a stream without a token sent data')));
    call.on('end', () => reject(new Error('a stream without a token ended cleanly')));
  });
  assert.equal(err.code, UNAUTHENTICATED, err.details);
  assert.match(err.details, /^authorization: /);
});

test('health and reflection answer without a token; rlhf health passes one from a file', async () => {
  assert.equal(await checkHealth(plain.address), 'SERVING');
  assert.equal(await checkHealth(plain.address, 'rlhf.v1.TrainingJobsService'), 'SERVING');
  assert.deepEqual(await listServices(plain.address), [
    'grpc.health.v1.Health',
    'rlhf.v1.TrainingJobsService',
  ]);
  const cli = await runCli(['health', '--address', plain.address, '--auth-token-file', tokenFile, '--list']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(cli.stdout, 'SERVING\ngrpc.health.v1.Health\nrlhf.v1.TrainingJobsService\n');
});

test('malformed protobuf is INVALID_ARGUMENT on every rpc kind; the server keeps serving', async () => {
  const authed = trainer(plain.address, { token });
  // Field 1 (a string) claims 5 bytes and carries 1: no decoder can read it.
  const garbage = Buffer.from([0x0a, 0x05, 0x41]);
  for (const method of [
    '/rlhf.v1.TrainingJobsService/StartTrainingJob',
    '/rlhf.v1.TrainingJobsService/GetTrainingJob',
    '/rlhf.v1.TrainingJobsService/ListTrainingJobs',
    '/rlhf.v1.TrainingJobsService/CancelTrainingJob',
  ]) {
    await assert.rejects(
      rawUnary(authed, method, garbage, (b) => b),
      (e: grpc.ServiceError) => {
        assert.equal(e.code, INVALID_ARGUMENT, `${method}: ${grpc.status[e.code]} ${e.details}`);
        assert.match(e.details, /^request: the request could not be decoded as a protobuf message/);
        return true;
      },
    );
  }
  const stream = authed.makeServerStreamRequest(
    '/rlhf.v1.TrainingJobsService/WatchTrainingJob',
    (b: Buffer) => b,
    (b: Buffer) => b,
    garbage,
  );
  const err = await new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
  assert.equal(err.code, INVALID_ARGUMENT, err.details);
  // Authentication comes first: garbage without a token learns nothing about decoding.
  await assertStatus(
    rawUnary(trainer(plain.address), '/rlhf.v1.TrainingJobsService/GetTrainingJob', garbage, (b) => b),
    UNAUTHENTICATED,
    'authorization',
  );
  await assertStatus(getJob(authed), NOT_FOUND, 'job_id', 'a valid call afterwards');
});

test('an oversize request is RESOURCE_EXHAUSTED (--max-message-mb 1); the server keeps serving', async () => {
  const authed = trainer(plain.address, { token });
  await assert.rejects(
    unaryCall(authed.getTrainingJob.bind(authed), { jobId: 'x'.repeat(1_100_000) }),
    (e: grpc.ServiceError) => e.code === RESOURCE_EXHAUSTED,
  );
  await assertStatus(getJob(authed), NOT_FOUND, 'job_id', 'a valid call afterwards');
});

test('training bounds: epochs, steps, dataset size and queued jobs above the limits are RESOURCE_EXHAUSTED naming the flag', async () => {
  const authed = trainer(plain.address, { token });
  const refused: Array<[StartRequest, string, RegExp]> = [
    [request({ epochs: 1e9 }), 'hyperparameters.epochs', /limit of 5 \(--train-max-epochs\)/],
    [request({ maxSteps: 21 }), 'hyperparameters.max_steps', /limit of 20 \(--train-max-steps\)/],
  ];
  const big = join(dir, 'big.jsonl');
  const line = `${JSON.stringify({ prompt: 'the film', chosen: ' was great .', rejected: ' was dull .' })}\n`;
  await writeFile(big, line.repeat(Math.ceil((1.2 * 1024 * 1024) / line.length)));
  refused.push([request({}, `file://${big}`), 'dataset.uri', /limit of 1 MiB \(--train-max-dataset-mb\)/]);
  for (const [req, field, message] of refused) {
    await assertStatus(start(authed, req), RESOURCE_EXHAUSTED, field, field);
    await assert.rejects(start(authed, req), (e: grpc.ServiceError) => message.test(e.details));
  }

  // Epochs over the data: 5 epochs of 64 pairs at batch size 1 are 320 steps, known once the job has the data.
  const long = await start(authed, request({ epochs: 5, batchSize: 1, gradAccum: 1 }));
  const ended = await finished(authed, long.id);
  assert.equal(ended.state, JobState.JOB_STATE_FAILED, ended.message);
  assert.equal(ended.errorCode, 'RESOURCE_EXHAUSTED');
  assert.match(
    ended.message,
    /^hyperparameters\.epochs: .*320 steps.*limit of 20 steps \(--train-max-steps\)/,
  );
  assert.equal(ended.step, 0, 'no step was trained');

  // One job runs, one waits (--train-max-queued 1), the third is refused.
  const settled = await Promise.allSettled(
    [1, 2, 3].map(() => start(authed, request({ maxSteps: 20, batchSize: 8 }))),
  );
  const rejected = settled.filter((s) => s.status === 'rejected');
  assert.equal(rejected.length, 1, JSON.stringify(settled.map((s) => s.status)));
  const reason = (rejected[0] as PromiseRejectedResult).reason as grpc.ServiceError;
  assert.equal(reason.code, RESOURCE_EXHAUSTED, reason.details);
  assert.match(reason.details, /^job_id: the job queue is full.*--train-max-queued/);
  for (const s of settled)
    if (s.status === 'fulfilled') {
      await unaryCall(authed.cancelTrainingJob.bind(authed), { jobId: s.value.id, reason: 'test over' });
      await finished(authed, s.value.id);
    }
  await assertStatus(getJob(authed), NOT_FOUND, 'job_id', 'still serving');
});

test('mutual TLS: a certificate off the allow-list is PERMISSION_DENIED, another CA cannot connect', async () => {
  const ca = readFileSync(pki.ca.cert);
  const creds = (pair: { cert: string; key: string } | null) =>
    pair
      ? grpc.credentials.createSsl(ca, readFileSync(pair.key), readFileSync(pair.cert))
      : grpc.credentials.createSsl(ca);
  const allowed = trainer(mtls.address, { credentials: creds(pki.allowed), token });
  await assertStatus(getJob(allowed), NOT_FOUND, 'job_id', 'allowed certificate and token');
  await assertStatus(
    getJob(trainer(mtls.address, { credentials: creds(pki.allowed) })),
    UNAUTHENTICATED,
    'authorization',
    'allowed certificate, no token',
  );
  const other = trainer(mtls.address, { credentials: creds(pki.otherSan), token });
  await assertStatus(getJob(other), PERMISSION_DENIED, 'client certificate', 'a SAN off the list');
  await assert.rejects(getJob(other), (e: grpc.ServiceError) => /DNS:other-client/.test(e.details));
  // Health stays open to any certificate the CA signed.
  assert.equal(await checkHealth(mtls.address, '', { credentials: creds(pki.otherSan) }), 'SERVING');
  for (const [label, c] of [
    ['a certificate from another CA', creds(pki.otherCa)],
    ['no client certificate', creds(null)],
  ] as const) {
    await assert.rejects(getJob(trainer(mtls.address, { credentials: c, token })), (e: grpc.ServiceError) => {
      assert.equal(e.code, UNAVAILABLE, `${label}: ${grpc.status[e.code]} ${e.details}`);
      return true;
    });
  }
  const cli = await runCli(
    [
      ...['health', '--address', mtls.address, '--list'],
      ...['--tls-ca', pki.ca.cert, '--tls-cert', pki.allowed.cert, '--tls-key', pki.allowed.key],
      ...['--tls-server-name', 'localhost'],
    ],
    { RLHF_AUTH_TOKEN_FILE: tokenFile },
  );
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^SERVING\n/);
});

test("the token never appears in the servers' output, while the refused calls are logged", () => {
  for (const s of [plain, mtls]) {
    const out = s.output();
    assert.ok(!out.includes(token), 'the token is in the output');
    assert.match(out, /this call carries no bearer token/);
  }
  assert.match(mtls.output(), /not on this service's allow-list/);
  assert.match(plain.output(), /"auth":"bearer token \(file /);
  assert.match(mtls.output(), /"auth":"bearer token \(RLHF_AUTH_TOKEN\)"/);
});
