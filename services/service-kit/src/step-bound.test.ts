/** The step bound of a job that asks for epochs: records counted as the engine reads them, steps as it counts. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RlhfError } from '@rlhf/platform';
import { checkPlannedSteps, countJsonlRecords, plannedSteps } from './step-bound.js';

test('records are the lines with content, a last line without a newline included', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rlhf-step-bound-'));
  try {
    const cases: Array<[string, number]> = [
      ['', 0],
      ['\n\n  \r\n', 0],
      ['{"a":1}\n{"a":2}\n', 2],
      ['{"a":1}\n\n \t\n{"a":2}', 2],
      ['{"a":1}\r\n{"a":2}\r\n', 2],
    ];
    for (const [text, records] of cases) {
      const file = join(dir, 'data.jsonl');
      writeFileSync(file, text);
      assert.equal(await countJsonlRecords(file), records, JSON.stringify(text));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('steps: max_steps when set, else epochs times batches per epoch, rounded up like the trainer', () => {
  assert.equal(plannedSteps({ epochs: 2, batchSize: 8 }, 64), 16);
  assert.equal(plannedSteps({ epochs: 2, batchSize: 8 }, 65), 18);
  assert.equal(plannedSteps({ epochs: 0.5, batchSize: 8 }, 65), 5);
  assert.equal(plannedSteps({ epochs: 1e9, maxSteps: 7, batchSize: 8 }, 65), 7);
  checkPlannedSteps({ epochs: 2, batchSize: 8 }, 64, 16, 'hyperparameters');
  assert.throws(
    () => checkPlannedSteps({ epochs: 2, batchSize: 8 }, 65, 16, 'train.hyperparameters'),
    (e: unknown) =>
      e instanceof RlhfError &&
      e.code === 'RESOURCE_EXHAUSTED' &&
      e.field === 'train.hyperparameters.epochs' &&
      /18 steps\) is above the server's limit of 16 steps \(--train-max-steps\)/.test(e.message),
  );
});
