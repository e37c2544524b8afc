/** The `rlhf` command as a user runs it: version, serve with --port 0, and clear errors on bad input. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkHealth } from '@rlhf/platform';
import { runCli, startCli } from '../helpers/cli.js';

test('rlhf --help and rlhf version', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /serve/);
  assert.match(help.stdout, /version/);
  const version = await runCli(['version', '--json']);
  assert.equal(version.code, 0);
  assert.equal(JSON.parse(version.stdout).api, 'rlhf.v1');
});

test('rlhf serve --port 0 prints the port, answers health and metrics, and drains on SIGTERM', async () => {
  const { child, match } = await startCli(
    ['serve', 'reward-model', '--port', '0', '--host', '127.0.0.1', '--metrics-port', '0'],
    /reward-model listening on 127\.0\.0\.1:(\d+) \(metrics on :(\d+)\)/,
  );
  try {
    const port = Number(match[1]);
    assert.equal(await checkHealth(`127.0.0.1:${port}`), 'SERVING');
    const status = await runCli(['health', '--address', `127.0.0.1:${port}`, '--list']);
    assert.equal(status.code, 0);
    assert.equal(
      status.stdout,
      'SERVING\ngrpc.health.v1.Health\nrlhf.v1.RewardModelService\nrlhf.v1.TrainingJobsService\n',
      'health --list prints exactly the services the process serves',
    );
    const metrics = await fetch(`http://127.0.0.1:${match[2]}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /rlhf_process_cpu_seconds_total/);
    assert.equal((await fetch(`http://127.0.0.1:${match[2]}/readyz`)).status, 200);
  } finally {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  }
});

function assertUserError(result: { code: number | null; stderr: string }, ...patterns: RegExp[]): void {
  assert.equal(result.code, 2, result.stderr);
  for (const p of patterns) assert.match(result.stderr, p);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace for a user mistake');
}

test('bad flags and environment exit 2 naming the flag and the expected form', async () => {
  assertUserError(
    await runCli(['serve', 'reward-model', '--port', 'abc']),
    /--port: expected an integer, got "abc"/,
    /between 0 and 65535/,
  );
  assertUserError(
    await runCli(['serve', 'reward-model', '--port', '0'], { NATS_URL: 'redis://127.0.0.1:6379' }),
    /NATS_URL: unknown scheme "redis"/,
    /nats:\/\//,
  );
  assertUserError(await runCli(['serve', 'no-such-service']), /no-such-service/, /policy-generator/);
  assertUserError(await runCli(['serve', 'reward-model', '--tls-cert', '/tmp/x.pem']), /--tls-key/);
  assertUserError(
    await runCli(['serve', 'reward-model', '--log-level', 'loud']),
    /--log-level: unknown level "loud"/,
  );
});
