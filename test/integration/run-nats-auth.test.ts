/**
 * `rlhf run` (CI-sized) against a nats-server that asks for a user and password, given as --nats-user and
 * --nats-password-file: the run and the workers it starts all sign in (the workers get the credentials by
 * environment), the run finishes, and neither the terminal nor the worker logs show the password.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type LocalNatsServer, startLocalNatsServer } from '@rlhf/platform';
import { runCli } from '../helpers/cli.js';
import { writeServerConfig } from '../helpers/nats-secure.js';

const example = new URL('../../examples/ci-small.yaml', import.meta.url).pathname;
const PASSWORD = 'run-pw-2f9c81d5';
const dir = await mkdtemp(join(tmpdir(), 'rlhf-run-auth-'));
let server: LocalNatsServer | null = null;
after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a run on a NATS with a user and password file: it and its workers sign in, nothing shows the password', async () => {
  server = await startLocalNatsServer({
    configFile: await writeServerConfig(
      dir,
      'auth',
      `authorization { users = [ { user: rlhf, password: "${PASSWORD}" } ] }\n`,
    ),
  });
  const pw = join(dir, 'password');
  await writeFile(pw, `${PASSWORD}\n`);
  const out = join(dir, 'run');
  const r = await runCli(
    [
      'run',
      '-f',
      example,
      '--out',
      out,
      '--nats-url',
      server.url,
      '--nats-user',
      'rlhf',
      '--nats-password-file',
      pw,
    ],
    { LOG_LEVEL: 'info' },
    240_000,
  );
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as { iterations: unknown[] };
  assert.equal(summary.iterations.length, 2);
  const logs = await readdir(join(out, 'logs'));
  assert.ok(logs.length > 0);
  for (const text of [
    r.stdout,
    r.stderr,
    ...(await Promise.all(logs.map((f) => readFile(join(out, 'logs', f), 'utf8')))),
  ])
    assert.ok(!text.includes(PASSWORD), 'the password shows in the output or a worker log');
});
