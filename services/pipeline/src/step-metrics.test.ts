import assert from 'node:assert/strict';
import { test } from 'node:test';
import { meanOfLastSteps } from './step-metrics.js';

test("the last ten steps' mean of each metric the last step has", () => {
  const steps = Array.from({ length: 15 }, (_, i) => ({
    loss: i,
    accuracy: i / 10,
    ...(i < 3 ? { old: 1 } : {}),
  }));
  assert.deepEqual(meanOfLastSteps(steps), { loss: 9.5, accuracy: 0.95 });
  assert.deepEqual(meanOfLastSteps(steps.slice(0, 2)), { loss: 0.5, accuracy: 0.05, old: 1 });
  assert.deepEqual(meanOfLastSteps(steps, 1), { loss: 14, accuracy: 1.4 });
  assert.deepEqual(meanOfLastSteps([]), {});
});
