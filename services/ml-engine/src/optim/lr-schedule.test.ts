import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lrSchedule, warmupStepsOf } from './lr-schedule.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

describe('learning-rate schedules', () => {
  it('warms up linearly from 0 (HF: the first update uses rate 0)', () => {
    for (const kind of ['constant', 'linear', 'cosine'] as const) {
      const lr = lrSchedule({ kind, lr: 1, totalSteps: 100, warmupSteps: 10 });
      assert.equal(lr(0), 0);
      close(lr(5), 0.5);
      close(lr(10), 1);
    }
  });

  it('constant stays at the peak', () => {
    const lr = lrSchedule({ kind: 'constant', lr: 2e-3, totalSteps: 50 });
    assert.equal(lr(0), 2e-3);
    assert.equal(lr(49), 2e-3);
  });

  it('linear falls to 0 at totalSteps', () => {
    const lr = lrSchedule({ kind: 'linear', lr: 1, totalSteps: 110, warmupSteps: 10 });
    close(lr(60), 0.5);
    close(lr(109), 0.01);
    assert.equal(lr(110), 0);
    assert.equal(lr(500), 0);
  });

  it('cosine is half-way at mid-decay and 0 at totalSteps', () => {
    const lr = lrSchedule({ kind: 'cosine', lr: 1, totalSteps: 110, warmupSteps: 10 });
    close(lr(35), 0.5 * (1 + Math.cos(Math.PI * 0.25)));
    close(lr(60), 0.5);
    close(lr(110), 0);
    close(lr(200), 0);
  });

  it('derives warmup from a ratio, rounding up as HF does', () => {
    assert.equal(warmupStepsOf({ kind: 'cosine', lr: 1, totalSteps: 100, warmupRatio: 0.03 }), 3);
    assert.equal(warmupStepsOf({ kind: 'cosine', lr: 1, totalSteps: 10, warmupRatio: 0.03 }), 1);
    assert.equal(
      warmupStepsOf({ kind: 'cosine', lr: 1, totalSteps: 10, warmupRatio: 0.5, warmupSteps: 2 }),
      2,
    );
    const lr = lrSchedule({ kind: 'cosine', lr: 5e-7, totalSteps: 100, warmupRatio: 0.03 });
    close(lr(1), 5e-7 / 3);
    close(lr(3), 5e-7);
  });

  it('rejects bad options naming the field', () => {
    assert.throws(
      () => lrSchedule({ kind: 'cosine', lr: 1, totalSteps: 0 }),
      /totalSteps must be an integer >= 1/,
    );
    assert.throws(
      () => lrSchedule({ kind: 'poly' as 'linear', lr: 1, totalSteps: 1 }),
      /unknown schedule "poly".*/,
    );
    assert.throws(() => lrSchedule({ kind: 'linear', lr: 1, totalSteps: 5, warmupRatio: 2 }), /warmupRatio/);
  });
});
