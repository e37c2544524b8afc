/**
 * The in-process executor and the NATS executor, driving the same stage functions (orchestrator
 * reconcileRun), give the same run: `rlhf quickstart --quick --iterations 2 --seed 5` hands every shard to the
 * services' shard handlers in its own process, `rlhf run` of the same RLHFRun publishes the shards to
 * worker processes of the four services over NATS, which call the same handlers. Same stages, same
 * artifacts, so the reward model's held-out accuracy, the fitted length penalty and, for pi_0 and at every
 * iteration, the proxy reward, gold, win rate, KL to pi_0, mean length and grammaticality, the pairs and the
 * DPO loss and accuracy must be equal to the last digit, and the models they leave byte for byte.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli } from '../helpers/cli.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-paths-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What `rlhf quickstart --quick --iterations 2 --seed 5` runs (cli quickstart-run.ts), as a file for `rlhf run`. */
const runYaml = `apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata:
  name: paths-agree
spec:
  setup:
    task: sentiment
    seed: 5
    prompts: 256
    evalPrompts: 32
    sftExamples: 600
    preferencePairs: 400
    preferenceEvalPairs: 100
    lengthFitPrompts: 64
    sft: { epochs: 1 }
    rewardModel: { epochs: 2 }
  judge: { type: reward, lengthPenalty: auto }
  prompts: { perIteration: 64 }
  iterations: 2
  generation: { samplesPerPrompt: 8, temperature: 0.8, maxNewTokens: 48, seed: 5 }
  pairs: { strategy: maxMin }
  dpo: { beta: 0.1, learningRate: 2.0e-3, epochs: 4, batchSize: 32, warmupRatio: 0.03, nllWeight: 4.0 }
`;

/** What the two summaries must agree on (timings, timestamps and the run's name aside). */
interface Summary {
  rewardModel: { heldOutAccuracy: number; labelBayesRate: number };
  judge: { type: string; lengthPenalty: number };
  initial: Record<string, unknown>;
  iterations: Array<Record<string, unknown>>;
  bestIteration: number | null;
}
const figures = (s: Summary) => ({
  rewardModel: s.rewardModel.heldOutAccuracy,
  labelBayesRate: s.rewardModel.labelBayesRate,
  judge: s.judge,
  initial: { ...s.initial, policy: undefined },
  iterations: s.iterations.map(({ durations: _d, policy: _p, ...figures }) => figures),
  bestIteration: s.bestIteration,
});

test('rlhf quickstart (in-process executor) and rlhf run (NATS executor) give the same run', async () => {
  const yaml = join(dir, 'run.yaml');
  await writeFile(yaml, runYaml);
  const [quick, run] = await Promise.all([
    runCli(
      ['quickstart', '--quick', '--iterations', '2', '--seed', '5', '--out', join(dir, 'quickstart')],
      {},
      180_000,
    ),
    runCli(['run', '-f', yaml, '--out', join(dir, 'run')], {}, 180_000),
  ]);
  assert.equal(quick.code, 0, quick.stderr);
  assert.equal(run.code, 0, run.stderr);
  const read = async (way: string) =>
    JSON.parse(await readFile(join(dir, way, 'summary.json'), 'utf8')) as Summary;
  const q = await read('quickstart');
  const r = await read('run');
  assert.equal(q.iterations.length, 2);
  assert.equal(q.judge.type, 'reward');
  assert.ok(q.judge.lengthPenalty > 0, 'the length penalty was fitted');
  q.iterations.forEach((it, k) => {
    assert.ok((it.kl as number) > 0, `iteration ${k + 1}: the policy moved`);
    assert.equal(typeof it.dpoLoss, 'number', `iteration ${k + 1}: DPO trained`);
  });
  assert.deepEqual(figures(q), figures(r));
  // Both leave the best policy and the reward model as model directories, and they are the same models.
  for (const model of ['policy', 'reward-model']) {
    const onnx = (way: string) => readFile(join(dir, way, 'models', model, 'model.onnx'));
    assert.deepEqual(await onnx('quickstart'), await onnx('run'), `models/${model}`);
  }
});
