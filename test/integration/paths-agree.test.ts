/**
 * The two ways to run the reference task give the same numbers: `rlhf quickstart --quick` (every stage in one
 * process) and `rlhf run` of an RLHFRun with the same settings (stage workers over NATS: the reward-model and
 * dpo-trainer services train, the policy generator samples and evaluates). Same seed, same setup, same
 * iteration-indexed random streams, so the reward model's held-out accuracy, the fitted length penalty and,
 * for pi_0 and at every iteration, the proxy reward (the judge's objective), KL to pi_0, mean length, gold, win
 * rate and grammaticality must be equal, and so must each iteration's DPO loss and accuracy. KL is
 * compared to a part in 10^9: it sums the log-probs of every token both policies sampled, so one different
 * token or weight shows.
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

/** What `rlhf quickstart --quick --iterations 2 --seed 5` does, as an RLHFRun (pipeline/reference-setup.ts). */
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
  generation: { samplesPerPrompt: 8, temperature: 1.0, maxNewTokens: 48, seed: 5 }
  pairs: { strategy: maxMin }
  dpo: { beta: 0.1, learningRate: 2.0e-3, epochs: 4, batchSize: 32, warmupRatio: 0.03, nllWeight: 2.0 }
`;

interface Figures {
  proxyReward: number;
  goldReward: number;
  winRate: number;
  kl: number;
  meanLength: number;
  grammaticalRate: number;
}
/** Everything but KL, which is compared with a tolerance. */
const figures = ({ kl: _kl, ...rest }: Figures) => ({
  proxyReward: rest.proxyReward,
  goldReward: rest.goldReward,
  winRate: rest.winRate,
  meanLength: rest.meanLength,
  grammaticalRate: rest.grammaticalRate,
});
const sameKl = (run: Figures, quick: Figures, where: string) =>
  assert.ok(
    Math.abs(run.kl - quick.kl) <= 1e-9 * Math.abs(quick.kl),
    `${where}: KL ${run.kl} (rlhf run) against ${quick.kl} (quickstart)`,
  );

test('rlhf quickstart and rlhf run of the same settings give the same reward model, penalty and iterations', async () => {
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
  const q = JSON.parse(await readFile(join(dir, 'quickstart', 'summary.json'), 'utf8')) as {
    rewardModel: { heldOutAccuracy: number };
    lengthPenalty: { lambda: number };
    initial: Figures;
    iterations: Array<{ eval: Figures; dpoLoss: number; dpoAccuracy: number }>;
  };
  const r = JSON.parse(await readFile(join(dir, 'run', 'summary.json'), 'utf8')) as {
    rewardModel: { heldOutAccuracy: number };
    judge: { lengthPenalty: number };
    initial: Figures;
    iterations: Array<Figures & { dpoLoss: number; dpoAccuracy: number }>;
  };
  assert.equal(r.rewardModel.heldOutAccuracy, q.rewardModel.heldOutAccuracy);
  assert.equal(r.judge.lengthPenalty, q.lengthPenalty.lambda);
  assert.deepEqual(figures(r.initial), figures(q.initial), 'pi_0');
  assert.equal(r.iterations.length, 2);
  assert.equal(q.iterations.length, 2);
  r.iterations.forEach((ri, k) => {
    const qi = q.iterations[k] as { eval: Figures; dpoLoss: number; dpoAccuracy: number };
    assert.deepEqual(figures(ri), figures(qi.eval), `iteration ${k + 1}`);
    sameKl(ri, qi.eval, `iteration ${k + 1}`);
    assert.ok(qi.eval.kl > 0, `iteration ${k + 1}: the policy moved`);
    // The DPO term and accuracy, each the mean of the last ten steps.
    assert.deepEqual([ri.dpoLoss, ri.dpoAccuracy], [qi.dpoLoss, qi.dpoAccuracy], `iteration ${k + 1}: DPO`);
  });
  // Both leave the best policy and the reward model as model directories, and they are the same models.
  for (const model of ['policy', 'reward-model']) {
    const onnx = (way: string) => readFile(join(dir, way, 'models', model, 'model.onnx'));
    assert.deepEqual(await onnx('quickstart'), await onnx('run'), `models/${model}`);
  }
});
