/**
 * The job queue with stand-in runs (no model): one job at a time with queue positions, watches that end
 * with the job, cancellation of queued and running jobs, idempotent ids, failures mapped to codes, a bounded
 * queue, and NATS events on rlhf.jobs.<service>.<job_id> through a real nats-server.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectNats, createLogger, RlhfError } from '@rlhf/platform';
import { natsForTests } from '@rlhf/platform/testing';
import {
  JobState,
  type JobStatus,
  type ModelRef,
  TrainingEvent,
  type TrainingMetrics,
  TrainingObjective,
} from '@rlhf/proto';
import { jobEventPublisher } from './job-events.js';
import { JobManager, type JobReporter, type JobSpec, requestFingerprint } from './job-manager.js';

const DPO = TrainingObjective.TRAINING_OBJECTIVE_DPO;

function metrics(step: number, totalSteps: number): TrainingMetrics {
  return {
    step,
    totalSteps,
    epoch: 0,
    loss: 1 / step,
    learningRate: 1e-3,
    gradNorm: 1,
    tokensPerSecond: 100,
    etaSeconds: totalSteps - step,
    extra: {},
    margin: step,
  };
}

/** A run that reports `steps` steps, waiting for `gate()` before each; stops when aborted. */
function gatedRun(steps: number, uri: string) {
  let release: () => void = () => {};
  let gate = new Promise<void>((r) => {
    release = r;
  });
  const started = { signal: null as AbortSignal | null };
  const run = async (signal: AbortSignal, report: JobReporter): Promise<ModelRef> => {
    started.signal = signal;
    report.phase('training');
    const aborted = new Promise<void>((r) => signal.addEventListener('abort', () => r()));
    for (let s = 1; s <= steps; s++) {
      await Promise.race([gate, aborted]);
      gate = new Promise<void>((r) => {
        release = r;
      });
      if (signal.aborted) throw signal.reason;
      report.step(metrics(s, steps));
    }
    return { uri, revision: '', digest: '' };
  };
  return { run, next: () => release(), started };
}

const spec = (id: string, run: JobSpec['run'], fingerprint = id): JobSpec => ({
  id,
  objective: DPO,
  fingerprint,
  run,
  labels: { 'rlhf.dev/run': 'demo' },
});

const tick = () => new Promise((r) => setImmediate(r));

test('one job runs at a time; the next waits QUEUED with its position, then runs', async () => {
  const jobs = new JobManager();
  const a = gatedRun(2, 'file:///out/a');
  const b = gatedRun(1, 'file:///out/b');
  const c = gatedRun(1, 'file:///out/c');
  assert.equal(jobs.submit(spec('a', a.run)).state, JobState.JOB_STATE_RUNNING, 'the slot was free');
  assert.equal(jobs.submit(spec('b', b.run)).state, JobState.JOB_STATE_QUEUED);
  jobs.submit(spec('c', c.run));
  await tick();
  assert.equal(jobs.get('a').state, JobState.JOB_STATE_RUNNING);
  assert.equal(jobs.get('a').message, 'training');
  assert.equal(jobs.get('b').state, JobState.JOB_STATE_QUEUED);
  assert.equal(jobs.get('b').message, 'queued: position 1 of 2');
  assert.equal(jobs.get('c').message, 'queued: position 2 of 2');
  assert.equal(b.started.signal, null, 'b has not started');
  assert.equal(jobs.queued, 2);
  assert.equal(jobs.runningId, 'a');

  a.next();
  await tick();
  const mid = jobs.get('a');
  assert.equal(mid.step, 1);
  assert.equal(mid.totalSteps, 2);
  assert.equal(mid.latestMetrics?.margin, 1);
  assert.ok(mid.latestMetrics?.time instanceof Date);
  a.next();
  const done = await jobs.wait('a');
  assert.equal(done.state, JobState.JOB_STATE_SUCCEEDED);
  assert.equal(done.output?.uri, 'file:///out/a');
  assert.ok(done.startedAt && done.finishedAt && done.createdAt);
  assert.deepEqual(done.labels, { 'rlhf.dev/run': 'demo' });
  await tick();
  assert.equal(jobs.get('b').state, JobState.JOB_STATE_RUNNING);
  assert.equal(jobs.get('c').message, 'queued: position 1 of 1');
  b.next();
  await jobs.wait('b');
  c.next();
  await jobs.wait('c');
  assert.equal(jobs.runningId, null);
});

test('watch: current status first, then progress, ending with finished; an ended job yields only finished', async () => {
  const jobs = new JobManager();
  const a = gatedRun(3, 'file:///out/w');
  jobs.submit(spec('w', a.run));
  const seen: string[] = [];
  const reading = (async () => {
    for await (const e of jobs.watch('w')) {
      const ev = e.event;
      if (ev?.$case === 'progress') seen.push(`progress:${ev.value.step}`);
      else if (ev) seen.push(`${ev.$case}:${JobState[ev.value.state]}`);
      assert.equal(e.jobId, 'w');
    }
  })();
  for (let i = 0; i < 3; i++) {
    await tick();
    a.next();
  }
  await reading;
  // The slot was free, so the job was already running when the watch began.
  assert.deepEqual(seen, [
    'stateChanged:JOB_STATE_RUNNING',
    'progress:1',
    'progress:2',
    'progress:3',
    'finished:JOB_STATE_SUCCEEDED',
  ]);
  const after: TrainingEvent[] = [];
  for await (const e of jobs.watch('w')) after.push(e);
  assert.equal(after.length, 1);
  assert.equal(after[0]?.event?.$case, 'finished');
});

test('a watch ends when its signal aborts, and the job goes on', async () => {
  const jobs = new JobManager();
  const a = gatedRun(2, 'file:///out/s');
  jobs.submit(spec('s', a.run));
  const ac = new AbortController();
  const events: TrainingEvent[] = [];
  const reading = (async () => {
    for await (const e of jobs.watch('s', ac.signal)) {
      events.push(e);
      ac.abort();
    }
  })();
  await reading;
  assert.equal(events.length, 1);
  a.next();
  await tick();
  a.next();
  assert.equal((await jobs.wait('s')).state, JobState.JOB_STATE_SUCCEEDED);
});

test('cancel: a queued job ends at once and never runs; a running one is signalled; a finished one stays', async () => {
  const jobs = new JobManager();
  const a = gatedRun(5, 'file:///out/a');
  const b = gatedRun(1, 'file:///out/b');
  jobs.submit(spec('a', a.run));
  jobs.submit(spec('b', b.run));
  await tick();
  const cb = jobs.cancel('b', 'run deleted');
  assert.equal(cb.state, JobState.JOB_STATE_CANCELLED);
  assert.equal(cb.errorCode, 'CANCELLED');
  assert.match(cb.message, /run deleted/);

  a.next();
  await tick();
  const ca = jobs.cancel('a');
  assert.equal(ca.state, JobState.JOB_STATE_RUNNING, 'running until the current step ends');
  assert.match(ca.message, /stopping after the current step/);
  assert.equal(a.started.signal?.aborted, true);
  a.next();
  const final = await jobs.wait('a');
  assert.equal(final.state, JobState.JOB_STATE_CANCELLED);
  assert.equal(final.step, 1, 'the steps before the cancel are kept in the status');
  assert.equal(final.output, undefined);
  assert.equal(b.started.signal, null, 'the cancelled queued job never ran');
  assert.equal(jobs.cancel('a').state, JobState.JOB_STATE_CANCELLED, 'cancelling again changes nothing');

  const c = gatedRun(1, 'file:///out/c');
  jobs.submit(spec('c', c.run));
  await tick();
  c.next();
  await jobs.wait('c');
  assert.equal(jobs.cancel('c').state, JobState.JOB_STATE_SUCCEEDED);
});

test('ids: a repeated id with the same request is the same job; otherwise ALREADY_EXISTS; bad and unknown ids', async () => {
  const jobs = new JobManager();
  const a = gatedRun(1, 'file:///out/a');
  const fp = requestFingerprint({ policy: { uri: 'x' }, labels: { b: '1', a: '2' } });
  assert.equal(fp, requestFingerprint({ labels: { a: '2', b: '1' }, policy: { uri: 'x' } }), 'key order');
  const first = jobs.submit(spec('job-1', a.run, fp));
  const again = jobs.submit(spec('job-1', gatedRun(1, 'file:///other').run, fp));
  assert.equal(again.id, first.id);
  assert.equal(jobs.lookup('job-1', fp)?.id, 'job-1');
  assert.equal(jobs.lookup('job-2', fp), null);
  assert.equal(jobs.lookup('', fp), null);
  assert.equal(jobs.queued + (jobs.runningId ? 1 : 0), 1, 'no second job');
  assert.throws(
    () => jobs.submit(spec('job-1', a.run, requestFingerprint({ policy: { uri: 'y' } }))),
    (e: unknown) => e instanceof RlhfError && e.code === 'ALREADY_EXISTS' && e.field === 'job_id',
  );
  for (const bad of ['Job_1', '-x', 'a'.repeat(64), 'a.b']) {
    assert.throws(
      () => jobs.submit(spec(bad, a.run)),
      (e: unknown) => e instanceof RlhfError && e.code === 'INVALID_ARGUMENT' && e.field === 'job_id',
      bad,
    );
  }
  const generated = jobs.submit({ objective: DPO, fingerprint: 'z', run: gatedRun(1, 'file:///z').run });
  assert.match(generated.id, /^[0-9a-f-]{36}$/);
  for (const call of [
    () => jobs.get('nope'),
    () => jobs.cancel('nope'),
    () => jobs.watch('nope'),
    () => jobs.get(''),
  ])
    assert.throws(
      call,
      (e: unknown) => e instanceof RlhfError && e.code === 'NOT_FOUND' && e.field === 'job_id',
    );
  await jobs.close();
});

test('failures: an RlhfError keeps its code and field; anything else is INTERNAL, its text only in the log', async () => {
  const logged: unknown[] = [];
  const jobs = new JobManager({ onInternalError: (_id, err) => logged.push(err) });
  jobs.submit(
    spec('bad-data', async () => {
      throw new RlhfError('INVALID_ARGUMENT', 'line 3 is not JSON', {
        field: 'dataset.uri',
        fix: 'fix line 3',
      });
    }),
  );
  jobs.submit(
    spec('bug', async () => {
      throw new TypeError('x is undefined');
    }),
  );
  const bad = await jobs.wait('bad-data');
  assert.equal(bad.state, JobState.JOB_STATE_FAILED);
  assert.equal(bad.errorCode, 'INVALID_ARGUMENT');
  assert.equal(bad.message, 'dataset.uri: line 3 is not JSON (fix line 3)');
  const bug = await jobs.wait('bug');
  assert.equal(bug.errorCode, 'INTERNAL');
  // A library error's text may quote what it read (JSON.parse does): never handed to the caller.
  assert.equal(bug.message, 'internal error; see the server log');
  assert.equal((logged[0] as Error).message, 'x is undefined');
});

test('a full queue is RESOURCE_EXHAUSTED; close cancels everything and refuses new jobs; old jobs are forgotten', async () => {
  const jobs = new JobManager({ maxQueued: 1, maxFinished: 2 });
  const a = gatedRun(100, 'file:///out/a');
  jobs.submit(spec('a', a.run));
  await tick();
  jobs.submit(spec('b', gatedRun(1, 'file:///b').run));
  assert.throws(
    () => jobs.submit(spec('c', gatedRun(1, 'file:///c').run)),
    (e: unknown) => e instanceof RlhfError && e.code === 'RESOURCE_EXHAUSTED',
  );
  const closing = jobs.close();
  a.next();
  await closing;
  assert.equal(jobs.get('a').state, JobState.JOB_STATE_CANCELLED);
  assert.equal(jobs.get('b').state, JobState.JOB_STATE_CANCELLED);
  assert.throws(
    () => jobs.submit(spec('d', gatedRun(1, 'file:///d').run)),
    (e: unknown) => e instanceof RlhfError && e.code === 'UNAVAILABLE',
  );

  const small = new JobManager({ maxFinished: 2 });
  for (const id of ['f1', 'f2', 'f3']) {
    small.submit(spec(id, async () => ({ uri: `file:///${id}`, revision: '', digest: '' })));
    await small.wait(id);
  }
  assert.throws(
    () => small.get('f1'),
    (e: unknown) => e instanceof RlhfError && e.code === 'NOT_FOUND',
  );
  assert.equal(small.get('f3').state, JobState.JOB_STATE_SUCCEEDED);
});

test('events reach the per-job hook, the manager hook, and NATS on rlhf.jobs.<service>.<job_id>', async () => {
  const server = await natsForTests();
  const logger = createLogger('test', { level: 'warn' });
  const nc = await connectNats({ url: server.url, name: 'job-manager-test', logger });
  try {
    const onNats: TrainingEvent[] = [];
    const sub = nc.subscribe('rlhf.jobs.dpo-trainer.>');
    const collecting = (async () => {
      for await (const m of sub) {
        const e = TrainingEvent.decode(m.data);
        onNats.push(e);
        assert.equal(m.subject, `rlhf.jobs.dpo-trainer.${e.jobId}`);
        if (e.event?.$case === 'finished') break;
      }
    })();
    await nc.flush();
    const publish = jobEventPublisher(nc, 'dpo-trainer', logger);
    const managerSeen: JobStatus[] = [];
    const jobs = new JobManager({
      onEvent: (e, status) => {
        publish(e);
        managerSeen.push(status);
      },
    });
    const hook: string[] = [];
    const a = gatedRun(2, 'file:///out/n');
    jobs.submit({ ...spec('n', a.run), onEvent: (e) => hook.push(e.event?.$case ?? '') });
    for (let i = 0; i < 2; i++) {
      await tick();
      a.next();
    }
    await jobs.wait('n');
    await collecting;
    const expected = ['stateChanged', 'stateChanged', 'progress', 'progress', 'finished'];
    assert.deepEqual(hook, expected);
    assert.deepEqual(
      onNats.map((e) => e.event?.$case),
      expected,
    );
    assert.equal(managerSeen.at(-1)?.state, JobState.JOB_STATE_SUCCEEDED);
  } finally {
    await nc.close();
    await server.stop();
  }
});
