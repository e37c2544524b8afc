/**
 * runTraining end to end on files: a run stopped mid-way continues from `<out>.partial` when started again
 * and ends with exactly the weights of an uninterrupted run; bad data is reported before anything is written.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModelDir, saveModelDir } from '../checkpoint/model-dir.js';
import { parseLlamaConfig } from '../model/config.js';
import { initWeights } from '../model/weights.js';
import { Rng } from '../random/rng.js';
import { trainBpe } from '../tokenizer/bpe-trainer.js';
import { runTraining } from './run-training.js';
import { defaultTrainOptions, type TrainOptions } from './trainer.js';

async function fixture(): Promise<{ dir: string; model: string; data: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'rlhf-train-'));
  const rng = new Rng(1);
  const words = ['great', 'awful', 'fine', 'dull'];
  const rows = Array.from({ length: 48 }, () => ({
    prompt: 'the film',
    completion: ` was ${words[rng.int(4)]} .`,
  }));
  const tokenizerJson = trainBpe(
    rows.map((r) => r.prompt + r.completion),
    { vocabSize: 280 },
  );
  const config = parseLlamaConfig({
    hidden_size: 16,
    intermediate_size: 32,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    num_hidden_layers: 1,
    vocab_size: 280,
    max_position_embeddings: 16,
  });
  const model = join(dir, 'base');
  await saveModelDir(model, { config, tokenizerJson, weights: initWeights(config, new Rng(2)) });
  const data = join(dir, 'sft.jsonl');
  await writeFile(data, rows.map((r) => JSON.stringify(r)).join('\n'));
  return { dir, model, data };
}

const options: TrainOptions = { ...defaultTrainOptions, objective: 'sft', lr: 5e-3, epochs: 2, batchSize: 8 };

test('an interrupted run resumes from its checkpoint and ends with the same weights', async (t) => {
  const f = await fixture();
  t.after(() => rm(f.dir, { recursive: true, force: true }));
  const straight = join(f.dir, 'straight');
  await runTraining({ modelDir: f.model, dataFile: f.data, outDir: straight, options });

  const resumed = join(f.dir, 'resumed');
  const controller = new AbortController();
  const first = await runTraining({
    modelDir: f.model,
    dataFile: f.data,
    outDir: resumed,
    options,
    saveEvery: 3,
    signal: controller.signal,
    onStep: (r) => {
      if (r.step === 7) controller.abort();
    },
  });
  assert.equal(first.stopped, true);
  assert.equal(existsSync(resumed), false, 'no output directory until training finishes');
  assert.ok(existsSync(`${resumed}.partial`));
  const second = await runTraining({
    modelDir: f.model,
    dataFile: f.data,
    outDir: resumed,
    options,
    saveEvery: 3,
  });
  assert.equal(second.resumedFromStep, 7);
  assert.equal(second.history.length, 12 - 7);
  assert.equal(existsSync(`${resumed}.partial`), false);
  const a = (await loadModelDir(straight)).weights;
  const b = (await loadModelDir(resumed)).weights;
  for (const [name, w] of a) assert.deepEqual(b.get(name), w, name);
  // The log holds every step, the ones before the checkpoint too, with the uninterrupted run's figures.
  const log = async (dir: string) =>
    (await readFile(join(dir, 'training_log.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; lr: number; metrics: Record<string, number> });
  const figures = (rows: Awaited<ReturnType<typeof log>>) =>
    rows.map((r) => ({ step: r.step, lr: r.lr, metrics: r.metrics }));
  const straightLog = await log(straight);
  assert.deepEqual(
    straightLog.map((r) => r.step),
    Array.from({ length: 12 }, (_, i) => i + 1),
  );
  assert.deepEqual(figures(await log(resumed)), figures(straightLog));
});

test('a dataset row with a bad field fails before anything is written', async (t) => {
  const f = await fixture();
  t.after(() => rm(f.dir, { recursive: true, force: true }));
  await writeFile(f.data, '{"prompt": "a", "completion": " b"}\n{"prompt": 3, "completion": " c"}\n');
  const out = join(f.dir, 'out');
  await assert.rejects(
    runTraining({ modelDir: f.model, dataFile: f.data, outDir: out, options }),
    /sft\.jsonl:2: field "prompt" expected/,
  );
  assert.equal(existsSync(out), false);
  await writeFile(f.data, '');
  await assert.rejects(
    runTraining({ modelDir: f.model, dataFile: f.data, outDir: out, options }),
    /empty dataset/,
  );
  await writeFile(f.data, '{"prompt_ids": [1, 2, 9999], "completion": " b"}\n');
  await assert.rejects(runTraining({ modelDir: f.model, dataFile: f.data, outDir: out, options }), /9999/);
  assert.equal(existsSync(out), false);
});
