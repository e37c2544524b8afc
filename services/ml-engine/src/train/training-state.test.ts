import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readTrainingState, TRAINING_STATE_DIR } from './training-state.js';

test("another run's checkpoint: an error for a named directory, nothing to resume with discardForeign", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rlhf-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.equal(await readTrainingState(dir, 'fp-a'), null, 'no state yet');
  await mkdir(join(dir, TRAINING_STATE_DIR));
  await writeFile(
    join(dir, TRAINING_STATE_DIR, 'trainer_state.json'),
    JSON.stringify({ step: 7, fingerprint: 'fp-b' }),
  );
  await assert.rejects(readTrainingState(dir, 'fp-a'), /state of a different training run/);
  assert.equal(await readTrainingState(dir, 'fp-a', true), null);
});
