/**
 * The worker supervisor with stand-in workers (a node one-liner in place of `rlhf serve`, which ignores the
 * serve arguments appended to it): restarts with a doubling backoff, gives up after N exits in a row with
 * an error naming the worker and its log, forgives exits NATS was to blame for and workers that stayed up.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { RlhfError } from '@rlhf/platform';
import { startLocalWorkers } from './local-workers.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-supervisor-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const worker = (code: string) => [process.execPath, '-e', code];
const aborted = (signal: AbortSignal, timeoutMs: number) =>
  new Promise<unknown>((resolve, reject) => {
    if (signal.aborted) return resolve(signal.reason);
    const timer = setTimeout(() => reject(new Error('the supervisor never gave up')), timeoutMs);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(signal.reason);
    });
  });

test('a worker that keeps exiting is restarted with a doubling backoff, then given up with its name and log', async () => {
  const notices: string[] = [];
  const started = Date.now();
  const workers = await startLocalWorkers({
    command: worker('console.error("cannot start: the reason"); process.exit(3)'),
    natsUrl: 'nats://127.0.0.1:1',
    plan: [{ service: 'dpo-trainer', replicas: 1 }],
    logDir: join(dir, 'give-up'),
    supervision: { maxRestarts: 3, backoffMs: 40, notice: (l) => notices.push(l) },
  });
  try {
    const reason = await aborted(workers.signal, 20_000);
    const log = join(dir, 'give-up', 'dpo-trainer-0.log');
    assert.ok(reason instanceof RlhfError);
    assert.equal(reason.code, 'UNAVAILABLE');
    assert.equal(reason.field, 'worker dpo-trainer-0');
    assert.equal(reason.message, `exited 4 times in a row (last: code 3); see ${log}`);
    assert.match(reason.fix ?? '', /--worker-restarts/);
    assert.deepEqual(
      notices.map((n) => n.replace(/ \(restart.*/, '')),
      [0.04, 0.08, 0.16]
        .map((s) => `worker dpo-trainer-0 exited (code 3); restarting it in ${s} s`)
        .concat([`worker dpo-trainer-0 keeps exiting; the run stops; see ${log}`]),
    );
    assert.ok(Date.now() - started >= 40 + 80 + 160, 'the backoff was waited');
    // Each start's output is in the log, appended.
    assert.equal((await readFile(log, 'utf8')).match(/cannot start: the reason/g)?.length, 4);
    assert.equal(workers.describe('dpo-trainer-0'), `dpo-trainer-0 (exited, not restarted, log ${log})`);
    assert.equal(workers.describe('someone-else'), undefined);
  } finally {
    await workers.stop();
  }
});

test('exits while NATS was unreachable are restarted but not counted', async () => {
  const notices: string[] = [];
  let natsDown = true;
  const workers = await startLocalWorkers({
    command: worker('process.exit(1)'),
    natsUrl: 'nats://127.0.0.1:1',
    plan: [{ service: 'policy-generator', replicas: 2 }],
    supervision: {
      maxRestarts: 1,
      backoffMs: 10,
      maxBackoffMs: 20,
      excused: () => natsDown,
      notice: (l) => notices.push(l),
    },
  });
  try {
    while (notices.length < 8) await new Promise((r) => setTimeout(r, 10));
    assert.equal(workers.signal.aborted, false);
    assert.ok(
      notices.every((n) => n.endsWith('(NATS was unreachable; not counted)')),
      notices.join('\n'),
    );
    assert.ok(notices.some((n) => n.startsWith('worker policy-generator-1 exited')));
    // NATS is back: the same exits count again, and the run stops after one restart in a row.
    natsDown = false;
    const reason = await aborted(workers.signal, 10_000);
    assert.match((reason as RlhfError).describe(), /^worker policy-generator-[01]: exited 2 times in a row/);
  } finally {
    await workers.stop();
  }
});

test('a worker that stayed up has its failures forgiven; stop() ends workers and pending restarts', async () => {
  const notices: string[] = [];
  const workers = await startLocalWorkers({
    command: worker('setTimeout(() => process.exit(5), 150)'),
    natsUrl: 'nats://127.0.0.1:1',
    plan: [{ service: 'reward-model', replicas: 1 }],
    supervision: { maxRestarts: 1, backoffMs: 10, stableMs: 100, notice: (l) => notices.push(l) },
  });
  while (notices.length < 4) await new Promise((r) => setTimeout(r, 20));
  assert.equal(workers.signal.aborted, false, notices.join('\n'));
  assert.ok(notices.every((n) => n.includes('restarting it in 0.01 s (restart 1 of at most 1 in a row)')));
  await workers.stop();
  const after = notices.length;
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(notices.length, after, 'nothing restarted after stop()');
  assert.match(workers.describe('reward-model-0') ?? '', /^reward-model-0 \(exited/);
});

test('a running worker is named in its events with the prefix, and described with its pid', async () => {
  const logDir = join(dir, 'named');
  const workers = await startLocalWorkers({
    command: worker('console.log("name", process.env.RLHF_WORKER_NAME); setTimeout(() => {}, 60_000)'),
    natsUrl: 'nats://127.0.0.1:1',
    plan: [{ service: 'dpo-trainer', replicas: 1 }],
    logDir,
    namePrefix: 'pod-a/',
  });
  const log = join(logDir, 'dpo-trainer-0.log');
  try {
    assert.match(
      workers.describe('pod-a/dpo-trainer-0') ?? '',
      new RegExp(`^dpo-trainer-0 \\(running, pid \\d+, log ${log}\\)$`),
    );
    assert.equal(workers.describe('dpo-trainer-0'), undefined);
    const deadline = Date.now() + 10_000;
    const text = () => readFile(log, 'utf8').catch(() => '');
    while (!(await text()).includes('\n') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(await readFile(log, 'utf8'), 'name pod-a/dpo-trainer-0\n');
  } finally {
    await workers.stop();
  }
  assert.equal(workers.signal.aborted, false);
});
