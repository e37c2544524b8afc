/**
 * `rlhf run` end to end on the CI-sized run (examples/ci-small.yaml: the quickstart's code path with small
 * numbers): setup, the length-penalty fit and two online iterations over NATS workers, summary and report.
 * Then the same run SIGKILLed mid-stage and started again: it skips the finished stages and completes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { rlhfBin, runCli } from '../helpers/cli.js';

const example = new URL('../../examples/ci-small.yaml', import.meta.url).pathname;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-run-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Summary {
  initial: Record<string, number | null>;
  iterations: Array<Record<string, unknown>>;
  bestIteration: number | null;
  judge: { lengthPenalty: number | null };
  rewardModel?: { heldOutAccuracy: number | null; labelBayesRate: number | null };
}

const readSummary = async (out: string): Promise<Summary> =>
  JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Summary;

/** The figures a resumed run must reproduce (durations and timestamps differ by nature). */
const figures = (s: Summary) => ({
  initial: s.initial,
  lambda: s.judge.lengthPenalty,
  rm: s.rewardModel,
  iterations: s.iterations.map(({ durations: _d, ...rest }) => rest),
});

let uninterrupted: Summary;

/** Same structure, same strings and integers; other numbers finite on both sides. */
function assertSameShape(a: unknown, b: unknown, path: string): void {
  if (typeof a === 'number' && typeof b === 'number' && !Number.isInteger(b)) {
    assert.ok(Number.isFinite(a) && Number.isFinite(b), `${path}: ${a} vs ${b}`);
  } else if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), `${path}: fields`);
    for (const k of Object.keys(b))
      assertSameShape((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
  } else assert.equal(a, b, path);
}

test('the CI-sized run finishes two iterations and writes summary.json, report.html and charts', async () => {
  const out = join(dir, 'straight');
  const r = await runCli(['run', '-f', example, '--out', out], {}, 180_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /iteration 2\/2: proxy/);
  uninterrupted = await readSummary(out);
  assert.equal(uninterrupted.iterations.length, 2);
  for (const it of uninterrupted.iterations) {
    assert.ok((it.pairs as number) > 0, 'every iteration trained on pairs');
    assert.ok(Number.isFinite(it.kl as number) && Number.isFinite(it.dpoLoss as number));
    assert.match(
      it.policy as string,
      /^nats-obj:\/\/rlhf-artifacts\/runs\/default\/ci-small\/iter-\d\/models\/policy$/,
    );
  }
  assert.ok((uninterrupted.judge.lengthPenalty ?? -1) >= 0, 'lengthPenalty auto was fitted');
  assert.equal(typeof uninterrupted.rewardModel?.heldOutAccuracy, 'number');
  const html = await readFile(join(out, 'report.html'), 'utf8');
  assert.match(html, /<svg/);
  assert.ok(existsSync(join(out, 'charts', 'reward.svg')));
});

test('a run SIGKILLed mid-stage resumes from its last finished stage and completes', async () => {
  const out = join(dir, 'killed');
  const child = spawn(process.execPath, [rlhfBin, 'run', '-f', example, '--out', out], {
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // Killed once iteration 1's training shard is out: mid-stage, with earlier stages recorded.
      if (/iteration 1 train/.test(stderr) && child.exitCode === null) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.once('exit', () => reject(new Error(`the run ended before it could be killed:\n${stderr}`)));
  });
  await new Promise((r) => child.once('exit', r));
  const again = await runCli(['run', '-f', example, '--out', out], {}, 180_000);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /iteration 1 judge: done in an earlier run \(skipped\)/);
  // The resumed run has the same shape and the same counts. Its float metrics are not compared: two
  // uninterrupted runs of this config already differ (KL by up to 2x), a nondeterminism not yet tracked
  // down (see the closing note), so equality here would test luck, not resumption.
  assertSameShape(figures(await readSummary(out)), figures(uninterrupted), 'summary');
});

test('bad runs are refused before any stage runs, naming the field', async () => {
  const bad = join(dir, 'bad.yaml');
  await writeFile(
    bad,
    [
      'apiVersion: rlhf.dev/v1alpha1',
      'kind: RLHFRun',
      'metadata: {name: bad}',
      'spec:',
      '  policy: {model: file:///nonexistent/sft}',
      '  judge: {type: gold, task: sentiment}',
      '  prompts: {dataset: file:///nonexistent/prompts.jsonl}',
      '  dpo: {beta: 0}',
      '  generation: {topP: 2}',
    ].join('\n'),
  );
  const invalid = await runCli(['run', '-f', bad, '--out', join(dir, 'bad')]);
  assert.notEqual(invalid.code, 0);
  assert.match(invalid.stderr, /spec\.dpo\.beta: must be > 0/);
  assert.match(invalid.stderr, /spec\.generation\.topP: must be <= 1/);

  await writeFile(
    bad,
    (await readFile(bad, 'utf8')).replace('  dpo: {beta: 0}\n  generation: {topP: 2}', ''),
  );
  const missing = await runCli(['run', '-f', bad, '--out', join(dir, 'bad')], {}, 60_000);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /spec\.policy\.model/);
  assert.match(missing.stderr, /does not exist/);
  assert.doesNotMatch(missing.stderr, /generate/);
});
