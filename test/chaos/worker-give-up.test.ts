/**
 * A worker that cannot run (here every worker: an ack wait the stage workers refuse) ends `rlhf run` with
 * one clear line naming the worker and its log, instead of a run waiting forever; nothing is left half
 * done, so the same command with the fault removed finishes the run.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type LocalNatsServer, startLocalNatsServer } from '@rlhf/platform';
import { startRun } from '../helpers/chaos.js';

const spec = new URL('../../examples/ci-small.yaml', import.meta.url).pathname;
let dir: string;
let nats: LocalNatsServer;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-give-up-'));
  nats = await startLocalNatsServer({ storeDir: join(dir, 'jetstream') });
});
after(async () => {
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
});

test('workers that keep exiting stop the run with an error naming the worker and its log', async () => {
  const out = join(dir, 'run');
  const failing = startRun(spec, out, nats.url, ['--worker-restarts', '1'], { RLHF_WORK_ACK_WAIT_MS: '5' });
  const code = await failing.exited;
  const stderr = failing.stderr();
  assert.equal(code, 1, stderr);
  const m =
    /^error: worker (\S+-0): exited 2 times in a row \(last: code \d+\); see (\S+\.log) \(read /m.exec(
      stderr,
    );
  assert.ok(m, stderr);
  assert.match(stderr, new RegExp(`^worker ${m[1]} exited \\(code \\d+\\); restarting it in 0\\.5 s`, 'm'));
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  // The log says why: the worker's own error, naming the variable.
  assert.match(await readFile(m[2] as string, 'utf8'), /RLHF_WORK_ACK_WAIT_MS/);

  const fixed = startRun(spec, out, nats.url);
  assert.equal(await fixed.exited, 0, fixed.stderr());
  assert.match(fixed.stderr(), /iteration 2\/2: proxy/);
});

test('--worker-restarts and --stall-timeout are checked, naming the flag', async () => {
  const out = join(dir, 'flags');
  for (const [flag, value, message] of [
    ['--worker-restarts', '-1', /--worker-restarts/],
    ['--worker-restarts', 'many', /--worker-restarts/],
    ['--stall-timeout', '500ms', /--stall-timeout: 500ms is under a second/],
    ['--stall-timeout', 'soon', /--stall-timeout: "soon" is not a duration/],
  ] as const) {
    const r = startRun(spec, out, nats.url, [flag, value]);
    assert.equal(await r.exited, 2, r.stderr());
    assert.match(r.stderr(), message);
  }
});
