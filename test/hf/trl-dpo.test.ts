/**
 * DPO handed to TRL, for real: a small policy made by `rlhf model init` and exported with
 * `rlhf model export`, pairs written in TRL's preference format (trl-pairs.ts), and the real `trl dpo`
 * command line (TRL from PyPI, on CPU, in the venv of scripts/python-trl-env.mjs) with the arguments
 * trlDpoArgs maps from spec.dpo. The checkpoint TRL saves is imported back with `rlhf model import` and
 * generates; the loss TRL reports on its first two steps is compared with the built-in trainer's on the
 * same pairs. Every step takes all pairs as its batch, so both trainers see the same batch whatever order
 * they shuffle in. At step 1 the policy is its own reference, so the DPO term is ln 2 and the total is
 * ln 2 + nllWeight x the chosen tokens' mean NLL; step 2 compares one AdamW update of each trainer.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { trlDpoArgs } from '@rlhf/controller';
import { loadTokenizer, type PairRecord } from '@rlhf/ml-engine';
import { trlAgreement, trlPreferenceJsonl, trlPreferenceRow } from '@rlhf/orchestrator';
import type { RlhfRunSpec } from '@rlhf/run-spec';
import { runCli } from '../helpers/cli.js';
import { offlineEnv, trlExecutable } from '../helpers/trl-env.js';

const corpus = [
  'the movie was great and the plot was fun',
  'the acting was bad and the music was loud',
  'i really liked the film and the story',
  'it was a boring film with a weak plot',
  'the music was lovely and the acting was strong',
  'the plot was thin but the acting was great',
];

const pairs: PairRecord[] = [
  {
    prompt: { text: 'the movie was' },
    chosen: { text: ' great and the plot was fun' },
    rejected: { text: ' boring' },
  },
  {
    prompt: { text: 'i really' },
    chosen: { text: ' liked the film' },
    rejected: { text: ' the music was loud' },
  },
  {
    prompt: { text: 'the acting' },
    chosen: { text: ' was strong' },
    rejected: { text: ' was bad and the music was loud' },
  },
  { prompt: { text: 'it was a' }, chosen: { text: ' lovely film' }, rejected: { text: ' weak plot' } },
];

const dpo: RlhfRunSpec['dpo'] = {
  beta: 0.1,
  learningRate: 1e-3,
  epochs: 1,
  batchSize: pairs.length,
  gradAccum: 1,
  warmupRatio: 0,
  schedule: 'constant',
  lossType: 'sigmoid',
  labelSmoothing: 0,
  nllWeight: 0.5,
  maxGradNorm: 1,
};

let dir = '';
const p = (...parts: string[]) => join(dir, ...parts);

async function ok(r: Promise<{ code: number | null; stdout: string; stderr: string }>): Promise<string> {
  const done = await r;
  assert.equal(done.code, 0, done.stderr);
  return done.stdout;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trl-dpo-'));
  await writeFile(p('corpus.txt'), `${corpus.join('\n')}\n`);
  await writeFile(
    p('policy.json'),
    JSON.stringify({
      hidden_size: 32,
      intermediate_size: 64,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      num_hidden_layers: 1,
      max_position_embeddings: 128,
    }),
  );
  const init = ['model', 'init', '--config', p('policy.json'), '--out', p('policy'), '--seed', '3'];
  await ok(runCli([...init, '--tokenizer-corpus', p('corpus.txt'), '--vocab-size', '300']));
  await ok(runCli(['model', 'export', '--model', p('policy'), '--out', p('policy-hf')]));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface StepLog {
  loss: number;
  gradNorm: number;
}

/** TRL's per-step log lines, `{'loss': '3.541', 'grad_norm': '1.439', ...}` (4 significant digits). */
function trlSteps(stdout: string): StepLog[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith("{'loss'"))
    .map((l) => JSON.parse(l.replaceAll("'", '"')) as Record<string, string>)
    .map((m) => ({ loss: Number(m.loss), gradNorm: Number(m.grad_norm) }));
}

const close = (a: number, b: number, rel: number) =>
  Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));

test('trl dpo on the exported policy matches the built-in trainer step for step, and its checkpoint imports and generates', {
  timeout: 900_000,
}, async () => {
  const tok = await loadTokenizer(p('policy', 'tokenizer.json'));
  // The platform's pairs are text; TRL tokenizes them itself. It must see the ids the built-in trainer sees.
  assert.deepEqual(trlAgreement(tok, pairs), { pairs: pairs.length, differing: 0 });
  await mkdir(p('pairs'));
  await writeFile(p('pairs', 'train.jsonl'), trlPreferenceJsonl(pairs.map((r) => trlPreferenceRow(tok, r))));

  const steps = 2;
  const args = trlDpoArgs(
    { dpo },
    { model: p('policy-hf'), reference: p('policy-hf'), pairs: p('pairs'), output: p('trl-out') },
    { processes: 1, cpu: true, seed: 42, maxLength: 128 },
  );
  const trl = spawnSync(trlExecutable(), ['dpo', ...args, '--max_steps', String(steps)], {
    encoding: 'utf8',
    env: { ...process.env, ...offlineEnv },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 600_000,
  });
  assert.equal(trl.status, 0, `trl dpo failed:\n${trl.stderr.slice(-4000)}`);
  const theirs = trlSteps(trl.stdout);
  assert.equal(theirs.length, steps, trl.stdout);

  await ok(
    runCli([
      'train',
      'dpo',
      '--model',
      p('policy'),
      '--data',
      p('pairs', 'train.jsonl'),
      '--out',
      p('ours'),
      '--steps',
      String(steps),
      '--batch-size',
      String(dpo.batchSize),
      '--beta',
      String(dpo.beta),
      '--nll-weight',
      String(dpo.nllWeight),
      '--lr',
      String(dpo.learningRate),
      '--schedule',
      dpo.schedule,
      '--warmup-ratio',
      String(dpo.warmupRatio),
      '--max-grad-norm',
      String(dpo.maxGradNorm),
    ]),
  );
  const ours = (await readFile(p('ours.metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { metrics: Record<string, number>; gradNorm: number });
  assert.equal(ours.length, steps);

  const first = ours[0] as (typeof ours)[number];
  // Step 1: policy == reference, so the DPO term is ln 2 and the total adds nllWeight x the mean NLL.
  assert.ok(close(first.metrics.dpo_loss as number, Math.LN2, 1e-6), `dpo term ${first.metrics.dpo_loss}`);
  const total = Math.LN2 + dpo.nllWeight * (first.metrics.nll as number);
  assert.ok(close(first.metrics.loss as number, total, 1e-6));
  // TRL prints 4 significant digits: agreement to rounding (5e-4) plus float32 noise.
  for (let s = 0; s < steps; s++) {
    const a = ours[s] as (typeof ours)[number];
    const b = theirs[s] as StepLog;
    assert.ok(
      close(a.metrics.loss as number, b.loss, 1e-3),
      `step ${s + 1}: built-in ${a.metrics.loss}, TRL ${b.loss}`,
    );
    assert.ok(
      close(a.gradNorm, b.gradNorm, 1e-3),
      `step ${s + 1}: grad norm built-in ${a.gradNorm}, TRL ${b.gradNorm}`,
    );
  }
  // Training moved the policy: step 2's loss is not step 1's.
  assert.notEqual(theirs[1]?.loss, theirs[0]?.loss);

  await ok(runCli(['model', 'import', '--from', p('trl-out'), '--out', p('imported')]));
  const gen = await ok(
    runCli([
      'generate',
      '--model',
      p('imported'),
      '--prompt',
      'the movie was',
      '--greedy',
      '--max-new-tokens',
      '6',
    ]),
  );
  const row = JSON.parse(gen.trim().split('\n')[0] as string) as { response_ids: number[][] };
  assert.ok((row.response_ids[0] as number[]).length > 0, gen);
});
