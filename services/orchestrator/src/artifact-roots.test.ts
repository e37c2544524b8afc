import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileUrisIn, localRunRoots } from './artifact-roots.js';

test("a local run's roots: its output directory and the spec's file:// inputs, as written and through symlinks", async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'rlhf-roots-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  await mkdir(join(base, 'models', 'sft'), { recursive: true });
  await mkdir(join(base, 'data'));
  await mkdir(join(base, 'elsewhere'));
  await writeFile(join(base, 'elsewhere', 'prompts.jsonl'), '{"prompt":"p"}\n');
  await symlink(join(base, 'elsewhere', 'prompts.jsonl'), join(base, 'data', 'prompts.jsonl'));
  const spec = {
    policy: { model: `file://${base}/models/sft` },
    judge: { type: 'reward', model: 'nats-obj://rlhf-models/rm' },
    prompts: { dataset: `file://${base}/data/prompts.jsonl`, eval: `file://${base}/data/absent.jsonl` },
    extra: [{ dataset: `file://${base}/../escape/x.jsonl` }],
  };
  assert.deepEqual(fileUrisIn(spec).length, 4);
  const roots = await localRunRoots(spec, join(base, 'run'));
  assert.deepEqual(roots.sort(), [
    join(base, 'data'),
    join(base, 'elsewhere'),
    join(base, 'models', 'sft'),
    join(base, 'run'),
  ]);
});
