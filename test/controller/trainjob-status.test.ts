/**
 * A TrainJob's state from the conditions Kubeflow Trainer sets (types Complete, Failed, Suspended; reasons
 * from JobSet or TrainingRuntimeNotSupported / DeadlineExceeded), hostile statuses included, and the run
 * condition a failure becomes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trainJobFailedCondition, trainJobState } from '@rlhf/controller';

const withConditions = (conditions: unknown) => ({ status: { conditions } });

test('Complete, Failed and Suspended conditions as Kubeflow Trainer sets them', () => {
  assert.deepEqual(trainJobState({}), { state: 'running' });
  assert.deepEqual(
    trainJobState(
      withConditions([
        { type: 'Suspended', status: 'True', reason: 'Suspended', message: 'TrainJob is suspended' },
      ]),
    ),
    { state: 'suspended' },
  );
  assert.deepEqual(
    trainJobState(
      withConditions([
        { type: 'Suspended', status: 'False', reason: 'Resumed', message: 'TrainJob is resumed' },
        {
          type: 'Complete',
          status: 'True',
          reason: 'AllJobsCompleted',
          message: 'jobset completed successfully',
        },
      ]),
    ),
    { state: 'complete' },
  );
  assert.deepEqual(
    trainJobState(
      withConditions([
        { type: 'Complete', status: 'True', reason: 'AllJobsCompleted', message: '' },
        {
          type: 'Failed',
          status: 'True',
          reason: 'FailedJobs',
          message: 'jobset failed due to job node-0 failing',
        },
      ]),
    ),
    { state: 'failed', reason: 'FailedJobs', message: 'jobset failed due to job node-0 failing' },
  );
  assert.deepEqual(
    trainJobState(withConditions([{ type: 'Failed', status: 'False', reason: 'FailedJobs', message: 'x' }])),
    { state: 'running' },
  );
});

test('a status that is not what Kubeflow writes reads as running, never as a crash', () => {
  for (const hostile of [
    null,
    7,
    { status: 'x' },
    withConditions('no'),
    withConditions([null, 3, { type: 1 }]),
  ]) {
    assert.deepEqual(trainJobState(hostile), { state: 'running' });
  }
  const long = trainJobState(withConditions([{ type: 'Failed', status: 'True', message: 'm'.repeat(5000) }]));
  assert.equal(long.state, 'failed');
  assert.ok(long.state === 'failed' && long.reason === 'Failed' && long.message.length === 1024);
});

test('a failure becomes the run condition with Kubeflow reason and message', () => {
  const now = new Date('2026-01-02T03:04:05Z');
  assert.deepEqual(
    trainJobFailedCondition(
      'big-2-trl',
      { reason: 'DeadlineExceeded', message: 'TrainJob exceeded its deadline' },
      now,
    ),
    {
      type: 'TrainJobFailed',
      status: 'True',
      reason: 'DeadlineExceeded',
      message:
        'TrainJob big-2-trl failed: TrainJob exceeded its deadline (kubectl describe trainjob big-2-trl shows its pods)',
      lastTransitionTime: '2026-01-02T03:04:05.000Z',
    },
  );
  assert.equal(trainJobFailedCondition('t', { reason: 'not a reason!', message: '' }, now).reason, 'Failed');
});
