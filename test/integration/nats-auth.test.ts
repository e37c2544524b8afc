/**
 * NATS the way operators run it, against real nats-servers that ask for credentials: user and password in
 * the URL and from a file, a token in the URL and from a file, an NKey seed, TLS with a client certificate;
 * a refused credential fails at once with a message that never carries the secret (nor do the logs, nor the
 * CLI's output); a service started before NATS waits for it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import {
  connectNats,
  createLogger,
  freePort,
  type LocalNatsServer,
  type Logger,
  type NatsConnection,
  RlhfError,
  resolveNatsFlags,
  startLocalNatsServer,
} from '@rlhf/platform';
import { runCli } from '../helpers/cli.js';
import {
  makeNkeyUser,
  makeOperatorSetup,
  makeTlsFiles,
  type TlsFiles,
  writeServerConfig,
} from '../helpers/nats-secure.js';

const PASSWORD = 'pw-Alice-7c1f0e';
const WRONG = 'not-her-pw-93b2d4';
const TOKEN = 'tok-5e8a21c9d7';

let dir: string;
let users: LocalNatsServer;
let tokenServer: LocalNatsServer;
let tlsServer: LocalNatsServer;
let tls: TlsFiles;
const nkey = makeNkeyUser();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-nats-auth-'));
  users = await startLocalNatsServer({
    configFile: await writeServerConfig(
      dir,
      'users',
      `authorization {\n  users = [\n    { user: alice, password: "${PASSWORD}" }\n    { nkey: ${nkey.publicKey} }\n  ]\n}\n`,
    ),
  });
  tokenServer = await startLocalNatsServer({
    configFile: await writeServerConfig(dir, 'token', `authorization { token: "${TOKEN}" }\n`),
  });
  tls = await makeTlsFiles(dir);
  tlsServer = await startLocalNatsServer({
    configFile: await writeServerConfig(
      dir,
      'tls',
      `tls {\n  cert_file: "${tls.serverCert}"\n  key_file: "${tls.serverKey}"\n  ca_file: "${tls.ca}"\n  verify: true\n}\n`,
    ),
  });
});

after(async () => {
  await Promise.all([users?.stop(), tokenServer?.stop(), tlsServer?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

/** A logger whose lines are kept, to check what an operator would read. */
function capturedLogger(): { logger: Logger; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return { logger: createLogger('test', { level: 'trace', destination: stream }), text: () => text };
}

async function roundTrip(nc: NatsConnection): Promise<void> {
  const sub = nc.subscribe('auth.check', { max: 1 });
  nc.publish('auth.check', 'ping');
  for await (const m of sub) assert.equal(m.string(), 'ping');
  await nc.close();
}

const withUserinfo = (url: string, userinfo: string) => url.replace('nats://', `nats://${userinfo}@`);

test('user and password written in the URL sign in', async () => {
  const { logger } = capturedLogger();
  await roundTrip(
    await connectNats({ url: withUserinfo(users.url, `alice:${PASSWORD}`), name: 't', logger }),
  );
});

test('a wrong password in the URL fails at once, and neither the error nor the logs show it', async () => {
  const { logger, text } = capturedLogger();
  const url = withUserinfo(users.url, `alice:${WRONG}`);
  const started = Date.now();
  const err = await connectNats({ url, name: 't', logger, startWaitMs: 60_000 }).then(
    () => assert.fail('connected with a wrong password'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RlhfError, String(err));
  assert.equal(err.code, 'FAILED_PRECONDITION');
  assert.match(err.describe(), /refused the credentials/);
  assert.ok(Date.now() - started < 10_000, 'a refused credential is not retried for the whole start wait');
  for (const [where, t] of [
    ['error', `${err.describe()} ${String(err.cause ?? '')} ${err.stack}`],
    ['logs', text()],
  ] as const) {
    assert.ok(!t.includes(WRONG), `${where} show the password: ${t}`);
  }
});

test('the CLI with a wrong password in NATS_URL prints a redacted error and a --help without it', async () => {
  const url = withUserinfo(users.url, `alice:${WRONG}`);
  const pull = await runCli(
    ['model', 'pull', '--from', 'nats-obj://rlhf-models/x', '--out', join(dir, 'x')],
    {
      NATS_URL: url,
      LOG_LEVEL: 'trace',
    },
  );
  assert.notEqual(pull.code, 0);
  assert.match(pull.stderr, /refused the credentials/);
  assert.ok(!`${pull.stdout}${pull.stderr}`.includes(WRONG), pull.stderr);
  for (const args of [
    ['serve', '--help'],
    ['run', '--help'],
    ['controller', '--help'],
    ['model', 'pull', '--help'],
  ]) {
    const help = await runCli(args, { NATS_URL: url });
    assert.equal(help.code, 0, help.stderr);
    assert.ok(!`${help.stdout}${help.stderr}`.includes(WRONG), `${args.join(' ')} shows the password`);
  }
  const bad = await runCli(['serve', 'reward-model', '--port', '0'], {
    NATS_URL: `redis://alice:${WRONG}@h:1`,
  });
  assert.match(bad.stderr, /unknown scheme "redis"/);
  assert.ok(!bad.stderr.includes(WRONG), bad.stderr);
});

test('a user with --nats-password-file, and an NKey seed file, sign in', async () => {
  const pw = join(dir, 'password');
  await writeFile(pw, `${PASSWORD}\n`);
  const seed = join(dir, 'nkey.seed');
  await writeFile(seed, `${nkey.seed}\n`);
  const { logger, text } = capturedLogger();
  const byFile = resolveNatsFlags({ natsUrl: users.url, natsUser: 'alice', natsPasswordFile: pw }, {});
  await roundTrip(await connectNats({ url: users.url, auth: byFile.auth, name: 't', logger }));
  const byEnv = resolveNatsFlags({}, { NATS_URL: users.url, NATS_NKEY_SEED_FILE: seed });
  await roundTrip(await connectNats({ url: byEnv.url as string, auth: byEnv.auth, name: 't', logger }));
  assert.ok(!text().includes(PASSWORD) && !text().includes(nkey.seed));
});

test('a token in the URL and from --nats-token-file signs in; a wrong token file does not', async () => {
  const { logger, text } = capturedLogger();
  await roundTrip(await connectNats({ url: withUserinfo(tokenServer.url, TOKEN), name: 't', logger }));
  const file = join(dir, 'token');
  await writeFile(file, TOKEN);
  await roundTrip(await connectNats({ url: tokenServer.url, auth: { tokenFile: file }, name: 't', logger }));
  await writeFile(file, 'tok-wrong-0000000');
  await assert.rejects(
    connectNats({ url: tokenServer.url, auth: { tokenFile: file }, name: 't', logger }),
    (e: RlhfError) => e.code === 'FAILED_PRECONDITION' && !e.describe().includes('tok-wrong-0000000'),
  );
  assert.ok(!text().includes(TOKEN) && !text().includes('tok-wrong-0000000'));
});

test('a creds file (user JWT + NKey seed) signs in to an operator-mode server; the logs hold neither', async () => {
  const setup = await makeOperatorSetup(dir);
  const operatorServer = await startLocalNatsServer({ configFile: setup.serverConfig, jetstream: false });
  try {
    const { logger, text } = capturedLogger();
    const auth = resolveNatsFlags({}, { NATS_CREDS: setup.credsFile }).auth;
    await roundTrip(await connectNats({ url: operatorServer.url, auth, name: 't', logger }));
    await assert.rejects(
      connectNats({ url: operatorServer.url, name: 't', logger }),
      (e: RlhfError) => e.code === 'FAILED_PRECONDITION',
      'without the creds the server refuses',
    );
    assert.ok(!text().includes(setup.seed) && !text().includes('eyJ'), text());
  } finally {
    await operatorServer.stop();
  }
});

test('TLS with a CA file and a client certificate; without them the connection fails', async () => {
  const { logger } = capturedLogger();
  const auth = { tlsCaFile: tls.ca, tlsCertFile: tls.clientCert, tlsKeyFile: tls.clientKey };
  await roundTrip(await connectNats({ url: tlsServer.url, auth, name: 't', logger }));
  await assert.rejects(
    connectNats({
      url: tlsServer.url,
      auth: { tlsCaFile: tls.ca },
      name: 't',
      logger,
      connectTimeoutMs: 1500,
    }),
    (e: RlhfError) => e instanceof RlhfError,
  );
  // A server certificate that does not verify is a configuration error: no waiting for it.
  const started = Date.now();
  await assert.rejects(
    connectNats({ url: tlsServer.url, name: 't', logger, startWaitMs: 60_000 }),
    (e: RlhfError) =>
      e.code === 'FAILED_PRECONDITION' && /TLS with NATS/.test(e.message) && e.field === 'NATS TLS',
  );
  assert.ok(Date.now() - started < 5000);
});

test('credential files that cannot be used are errors naming their flag, before any connection', async () => {
  const { logger } = capturedLogger();
  const cases: Array<[object, RegExp]> = [
    [{ passwordFile: join(dir, 'password') }, /--nats-password-file.*needs a user/],
    [{ tokenFile: join(dir, 'missing') }, /--nats-token-file.*cannot read/],
    [{ nkeySeedFile: join(dir, 'password') }, /--nats-nkey.*does not hold an NKey seed/],
    [{ credsFile: join(dir, 'password') }, /--nats-creds.*is not a NATS creds file/],
    [{ tlsCertFile: tls.clientCert }, /--nats-tls-key.*needs its key/],
  ];
  for (const [auth, pattern] of cases) {
    await assert.rejects(connectNats({ url: users.url, auth, name: 't', logger }), (e: RlhfError) => {
      assert.equal(e.code, 'INVALID_ARGUMENT');
      assert.match(e.describe(), pattern);
      assert.ok(!e.describe().includes(PASSWORD), e.describe());
      return true;
    });
  }
});

test('a service started before NATS waits for it, logging; a command fails at once', async () => {
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const { logger } = capturedLogger();
  const started = Date.now();
  await assert.rejects(connectNats({ url, name: 't', logger }), (e: RlhfError) => e.code === 'UNAVAILABLE');
  assert.ok(Date.now() - started < 5000);

  const waiting = capturedLogger();
  const pending = connectNats({
    url,
    name: 't',
    logger: waiting.logger,
    startWaitMs: Number.POSITIVE_INFINITY,
    waitLogEveryMs: 500,
  });
  await new Promise((r) => setTimeout(r, 2500));
  const late = await startLocalNatsServer({ port });
  try {
    const nc = await pending;
    assert.match(waiting.text(), /NATS is not reachable yet; waiting for it/);
    assert.ok(waiting.text().split('waiting for it').length >= 3, 'logs again while it waits');
    await roundTrip(nc);
  } finally {
    await late.stop();
  }
  const bounded = Date.now();
  await assert.rejects(
    connectNats({ url, name: 't', logger, startWaitMs: 2000 }),
    (e: RlhfError) => e.code === 'UNAVAILABLE' && /attempts/.test(e.message),
  );
  assert.ok(Date.now() - bounded >= 1500);
});
