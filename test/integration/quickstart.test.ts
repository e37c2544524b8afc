/**
 * `rlhf quickstart` as a user runs it: the RLHFRun in one process, resumable. A run killed mid-way continues
 * from its finished stages, a finished run run again does nothing but write its outputs, a changed setting
 * in the same directory is refused unless --overwrite says to start over, and the output directory holds
 * what `rlhf run` leaves (summary.json as a RunSummary, report.html, charts, the models).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { rlhfBin, runCli } from '../helpers/cli.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-quickstart-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Summary {
  judge: { type: string; lengthPenalty: number | null };
  initial: { proxyReward: number | null; goldReward: number };
  iterations: Array<{ iteration: number; kl: number; pairs: number; dpoLoss: number | null }>;
  bestPolicy: string;
}

/** Starts quickstart and SIGKILLs it once its stderr matches `at`. */
function killWhen(args: string[], at: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [rlhfBin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`quickstart never reached ${at}\n${stderr}`));
    }, 180_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (at.test(stderr)) child.kill('SIGKILL');
    });
    child.once('exit', (_code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' && at.test(stderr)) resolve(stderr);
      else reject(new Error(`quickstart ended (${signal ?? _code}) before ${at}\n${stderr}`));
    });
  });
}

test('a killed quickstart resumes from its finished stages; a finished one only rewrites its outputs', async () => {
  const out = join(dir, 'resumed');
  const args = ['quickstart', '--quick', '--iterations', '1', '--seed', '3', '--out', out];
  // Killed once SFT is recorded and the reward model is training.
  await killWhen(args, /reward-model/);
  const resumed = await runCli(args, {}, 180_000);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /^data: done in an earlier run \(skipped\)$/m);
  assert.match(resumed.stderr, /^sft: done in an earlier run \(skipped\)$/m);
  assert.doesNotMatch(resumed.stderr, /^reward-model: done in an earlier run/m);
  const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Summary;
  assert.equal(summary.judge.type, 'reward');
  assert.ok((summary.judge.lengthPenalty ?? 0) > 0, 'b fits the length penalty');
  assert.equal(summary.iterations.length, 1);
  assert.equal(summary.iterations[0]?.pairs, 64);
  assert.ok((summary.iterations[0]?.kl ?? 0) > 0, 'the policy moved');
  for (const file of ['report.html', 'models/policy/model.onnx', 'models/reward-model/model.onnx'])
    await access(join(out, file));

  const again = await runCli(args, {}, 120_000);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /^iteration 1 train: done in an earlier run \(skipped\)$/m);
  assert.doesNotMatch(again.stderr, /\[#*-+\]/, 'nothing ran again');
  assert.deepEqual(
    (JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Summary).iterations.map((i) => [
      i.kl,
      i.dpoLoss,
    ]),
    summary.iterations.map((i) => [i.kl, i.dpoLoss]),
  );

  // Another setting in the same directory: refused, naming the flag that starts over.
  const changed = await runCli([...args, '--variant', 'a'], {}, 60_000);
  assert.equal(changed.code, 1, changed.stderr);
  assert.match(changed.stderr, /different spec/);
  assert.match(changed.stderr, /--overwrite to start over, or pass another --out/);
});

test('--overwrite starts over with the new setting; variant g is judged by the gold reward', async () => {
  const out = join(dir, 'resumed');
  const r = await runCli(
    [
      'quickstart',
      '--quick',
      '--iterations',
      '1',
      '--seed',
      '3',
      '--variant',
      'g',
      '--out',
      out,
      '--overwrite',
    ],
    {},
    180_000,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /done in an earlier run/);
  const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Summary;
  assert.deepEqual(summary.judge, { type: 'gold', lengthPenalty: null });
  // No proxy judge: the validation reward is the gold's.
  assert.equal(summary.initial.proxyReward, null);
});

test('quickstart names a bad flag and says what it takes', async () => {
  const bad = await runCli(['quickstart', '--variant', 'x', '--out', join(dir, 'bad')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--variant/);
  assert.match(bad.stderr, /use a, b or g/);
  const help = await runCli(['quickstart', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--overwrite/);
  assert.match(help.stdout, /same stage functions as `rlhf run`/);
});
