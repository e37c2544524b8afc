/** `rlhf serve` options from flags and environment: the bind address rule, credentials, training bounds. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RlhfError } from '../errors.js';
import { checkBearer } from '../grpc/bearer-token.js';
import { exposureWarning } from '../grpc/server.js';
import { resolveServeOptions } from './serve-flags.js';
import { defaultTrainingBounds } from './training-bounds.js';

test('the bind address: loopback by default, every interface in Kubernetes, a flag or HOST wins', () => {
  assert.equal(resolveServeOptions({}, {}).host, '127.0.0.1');
  assert.equal(resolveServeOptions({}, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }).host, '0.0.0.0');
  assert.equal(
    resolveServeOptions({ host: '127.0.0.1' }, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }).host,
    '127.0.0.1',
  );
  assert.equal(resolveServeOptions({}, { KUBERNETES_SERVICE_HOST: '10.0.0.1', HOST: '::1' }).host, '::1');
  assert.equal(resolveServeOptions({ host: '0.0.0.0' }, {}).host, '0.0.0.0');
});

test('a non-loopback bind without TLS or a token is warned about, naming the flags', () => {
  const warning = exposureWarning('0.0.0.0', false, false);
  assert.match(warning ?? '', /--auth-token-file/);
  assert.match(warning ?? '', /--tls-cert\/--tls-key/);
  assert.equal(exposureWarning('0.0.0.0', true, false), null);
  assert.equal(exposureWarning('0.0.0.0', false, true), null);
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost'])
    assert.equal(exposureWarning(host, false, false), null);
  assert.notEqual(exposureWarning('10.1.2.3', false, false), null);
});

test('the token: --auth-token-file, else RLHF_AUTH_TOKEN_FILE, else RLHF_AUTH_TOKEN', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rlhf-serve-flags-'));
  try {
    const file = join(dir, 'token');
    writeFileSync(file, 'from-the-file\n');
    const other = join(dir, 'other');
    writeFileSync(other, 'from-the-env-file\n');
    const accepts = (o: ReturnType<typeof resolveServeOptions>, token: string) => {
      assert.ok(o.token, 'a token source');
      assert.equal(checkBearer([`Bearer ${token}`], o.token), null, token);
    };
    accepts(
      resolveServeOptions({ authTokenFile: file }, { RLHF_AUTH_TOKEN_FILE: other, RLHF_AUTH_TOKEN: 'x' }),
      'from-the-file',
    );
    accepts(
      resolveServeOptions({}, { RLHF_AUTH_TOKEN_FILE: other, RLHF_AUTH_TOKEN: 'x' }),
      'from-the-env-file',
    );
    accepts(resolveServeOptions({}, { RLHF_AUTH_TOKEN: 'from-the-variable' }), 'from-the-variable');
    assert.equal(resolveServeOptions({}, {}).token, undefined);
    assert.throws(
      () => resolveServeOptions({ authTokenFile: join(dir, 'missing') }, {}),
      (e: unknown) => e instanceof RlhfError && e.field === '--auth-token-file',
    );
    assert.throws(
      () => resolveServeOptions({}, { RLHF_AUTH_TOKEN: 'hunter2 secret' }),
      (e: unknown) => e instanceof RlhfError && !e.describe().includes('hunter2'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--tls-allowed-clients needs mutual TLS', () => {
  assert.throws(
    () => resolveServeOptions({ tlsCert: 'c.pem', tlsKey: 'k.pem', tlsAllowedClients: 'dns:a' }, {}),
    (e: unknown) =>
      e instanceof RlhfError && e.field === '--tls-allowed-clients' && /--tls-client-ca/.test(e.describe()),
  );
  const o = resolveServeOptions(
    { tlsCert: 'c.pem', tlsKey: 'k.pem', tlsClientCa: 'ca.pem' },
    { TLS_ALLOWED_CLIENTS: 'dns:a,uri:spiffe://td/b' },
  );
  assert.deepEqual([...(o.tls?.allowedClients?.dns ?? [])], ['a']);
  assert.deepEqual([...(o.tls?.allowedClients?.uris ?? [])], ['spiffe://td/b']);
});

test('training bounds: defaults, flags, environment, and refused values', () => {
  assert.deepEqual(resolveServeOptions({}, {}).trainingBounds, defaultTrainingBounds);
  assert.deepEqual(
    resolveServeOptions(
      { trainMaxSteps: '500', trainMaxEpochs: '3' },
      { TRAIN_MAX_DATASET_MB: '2', TRAIN_MAX_QUEUED: '4' },
    ).trainingBounds,
    { maxSteps: 500, maxEpochs: 3, maxDatasetBytes: 2 * 1024 * 1024, maxQueued: 4 },
  );
  for (const [raw, field] of [
    [{ trainMaxSteps: '0' }, '--train-max-steps'],
    [{ trainMaxEpochs: 'many' }, '--train-max-epochs'],
    [{ trainMaxQueued: '-1' }, '--train-max-queued'],
  ] as const)
    assert.throws(
      () => resolveServeOptions(raw, {}),
      (e: unknown) => e instanceof RlhfError && e.field === field,
    );
});

test('the OpenAI API: off by default; a port and NAME=URI models from flags or environment', async () => {
  assert.equal(resolveServeOptions({}, {}).openai, undefined);
  assert.equal(resolveServeOptions({ openaiPort: 'off' }, {}).openai, undefined);
  assert.deepEqual(
    resolveServeOptions({ openaiPort: '0', openaiModel: ['policy=nats-obj://b/k', 'file:///m/p?x=1'] }, {})
      .openai,
    {
      port: 0,
      models: [
        { id: 'policy', uri: 'nats-obj://b/k' },
        // An `=` after the scheme is the URI's own: the bare URI is its id.
        { id: 'file:///m/p?x=1', uri: 'file:///m/p?x=1' },
      ],
    },
  );
  assert.deepEqual(
    resolveServeOptions({}, { OPENAI_PORT: '8000', OPENAI_MODELS: 'a=file:///x,b=file:///y' }).openai,
    {
      port: 8000,
      models: [
        { id: 'a', uri: 'file:///x' },
        { id: 'b', uri: 'file:///y' },
      ],
    },
  );
  for (const [raw, field] of [
    [{ openaiPort: '99999' }, '--openai-port'],
    [{ openaiModel: ['p=file:///x'] }, '--openai-model'],
    [{ openaiPort: '0', openaiModel: ['p=not-a-uri'] }, '--openai-model'],
    [{ openaiPort: '0', openaiModel: ['p=file:///x', 'p=file:///y'] }, '--openai-model'],
  ] as Array<[Record<string, string | string[]>, string]>)
    assert.throws(
      () => resolveServeOptions(raw, {}),
      (e: unknown) => e instanceof RlhfError && e.field === field,
      JSON.stringify(raw),
    );
  // Only a service with an OpenAI API takes the port; the others refuse before they start anything.
  const { serveService } = await import('../service-host.js');
  await assert.rejects(
    serveService(
      { name: 'reward-model', summary: '', grpcServiceNames: [], bindings: () => [] },
      { host: '127.0.0.1', port: 0, openai: { port: 0, models: [] } },
    ),
    (e: unknown) => e instanceof RlhfError && e.field === '--openai-port',
  );
});

test('--stage-work: on by default; off keeps NATS for artifacts only; anything else names the flag', () => {
  assert.equal(resolveServeOptions({}, {}).stageWork, undefined);
  assert.equal(resolveServeOptions({ stageWork: 'on' }, {}).stageWork, undefined);
  assert.equal(resolveServeOptions({ stageWork: 'off' }, {}).stageWork, false);
  assert.equal(resolveServeOptions({}, { RLHF_STAGE_WORK: 'off' }).stageWork, false);
  assert.throws(() => resolveServeOptions({ stageWork: 'no' }, {}), {
    field: '--stage-work',
    message: /must be on or off, got "no"/,
  });
});
