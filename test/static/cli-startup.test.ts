/**
 * `rlhf --help`, and each `rlhf serve <service>` worker that `rlhf run` starts, build the whole command
 * table. Building it must not load the engine, the transports or the Kubernetes client (each command imports
 * what it runs when it runs): with them, `rlhf --help` took 1.4 s on a 2-core machine, without them 0.5 s.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const heavy = [
  'onnxruntime-node',
  '@grpc/grpc-js',
  '@nats-io/transport-node',
  '@kubernetes/client-node',
  'prom-client',
  'pino',
  'services/ml-engine/src/index.ts',
  'services/orchestrator/src/index.ts',
  'services/platform/src/index.ts',
  'services/reward-model/src/index.ts',
];

test('building the rlhf command table loads no engine, transport or Kubernetes code', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      './test/static/fixtures/record-imports.mjs',
      'test/static/fixtures/build-cli-program.ts',
    ],
    { cwd: root, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const urls = JSON.parse(r.stdout) as string[];
  assert.ok(
    urls.some((u) => u.endsWith('services/cli/src/commands/train.ts')),
    'the recording sees the command modules',
  );
  assert.ok(
    urls.some((u) => u.includes('/commander/')),
    'the recording sees packages',
  );
  for (const name of heavy) {
    const hits = urls.filter((u) => u.includes(`/${name}`));
    assert.deepEqual(hits, [], `${name} is loaded by the command table`);
  }
});
