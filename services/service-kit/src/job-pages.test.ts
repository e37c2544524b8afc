/**
 * Pages of jobs: JobManager.list walks jobs in acceptance order after a resume point, and the page token
 * carries that point and the filters, so a walk survives jobs added and forgotten between pages and a token
 * cannot be replayed with other filters.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RlhfError } from '@rlhf/platform';
import { JobState, type ModelRef, TrainingObjective } from '@rlhf/proto';
import { JobManager } from './job-manager.js';
import {
  decodeJobPageToken,
  defaultJobPageSize,
  encodeJobPageToken,
  jobPageSize,
  maxJobPageSize,
} from './job-pages.js';

const { TRAINING_OBJECTIVE_SFT: SFT, TRAINING_OBJECTIVE_DPO: DPO } = TrainingObjective;
const all = {
  objective: TrainingObjective.TRAINING_OBJECTIVE_UNSPECIFIED,
  state: JobState.JOB_STATE_UNSPECIFIED,
};

/** A run that never ends until aborted. */
const forever = (signal: AbortSignal): Promise<ModelRef> =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RlhfError, String(err));
    return err.field;
  }
  assert.fail('expected an error');
}

test('page size: 0 is the default, above the maximum is the maximum, negative is refused', () => {
  assert.equal(jobPageSize(0), defaultJobPageSize);
  assert.equal(jobPageSize(3), 3);
  assert.equal(jobPageSize(maxJobPageSize + 1), maxJobPageSize);
  assert.equal(
    fieldOf(() => jobPageSize(-1)),
    'page_size',
  );
});

test('tokens round-trip with their filters; other filters and foreign tokens are refused naming page_token', () => {
  const filter = { objective: DPO, state: JobState.JOB_STATE_RUNNING };
  assert.equal(decodeJobPageToken('', filter), 0);
  assert.equal(decodeJobPageToken(encodeJobPageToken(7, filter), filter), 7);
  assert.equal(
    fieldOf(() => decodeJobPageToken(encodeJobPageToken(7, filter), all)),
    'page_token',
  );
  for (const forged of [
    'x',
    Buffer.from('j1.-3.0.0').toString('base64url'),
    Buffer.from('j2.1.0.0').toString('base64url'),
  ])
    assert.equal(
      fieldOf(() => decodeJobPageToken(forged, all)),
      'page_token',
      forged,
    );
});

test('list: acceptance order, filters, resume points that survive added and forgotten jobs', async () => {
  const jobs = new JobManager({ maxFinished: 1 });
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const objective = i % 2 === 0 ? DPO : SFT;
    ids.push(jobs.submit({ id: `job-${i}`, objective, fingerprint: String(i), run: forever }).id);
  }
  const keepAll = () => true;
  const first = jobs.list(keepAll, 0, 2);
  assert.deepEqual(
    first.jobs.map((j) => j.id),
    ['job-0', 'job-1'],
  );
  assert.equal(first.more, true);
  // Cancelling queued jobs finishes them; with maxFinished 1 the older finished one is forgotten.
  jobs.cancel('job-2');
  jobs.cancel('job-3');
  jobs.submit({ id: 'job-5', objective: SFT, fingerprint: '5', run: forever });
  const rest = jobs.list(keepAll, first.lastSeq, 10);
  assert.deepEqual(
    rest.jobs.map((j) => j.id),
    ['job-3', 'job-4', 'job-5'],
    'job-2 was forgotten; the walk goes on after job-1',
  );
  assert.equal(rest.more, false);
  const sft = jobs.list((s) => s.objective === SFT, 0, 10);
  assert.deepEqual(
    sft.jobs.map((j) => j.id),
    ['job-1', 'job-3', 'job-5'],
  );
  const exact = jobs.list(keepAll, 0, 5);
  assert.equal(exact.jobs.length, 5);
  assert.equal(exact.more, false, 'a page that ends exactly at the last job says so');
  await jobs.close();
});
