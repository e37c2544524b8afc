import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidRunError, parseRunYaml } from './parse-run.js';

const minimal = `
apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: sentiment-demo}
spec:
  policy: {model: nats-obj://rlhf-models/sft}
  judge: {type: reward, model: nats-obj://rlhf-models/rm, lengthPenalty: 0.001}
  prompts: {dataset: nats-obj://rlhf-data/prompts.jsonl, eval: nats-obj://rlhf-data/eval.jsonl}
`;

function problems(yaml: string): string[] {
  try {
    parseRunYaml(yaml, 'bad.yaml');
  } catch (e) {
    assert.ok(e instanceof InvalidRunError);
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('expected the run to be rejected');
}

test('a minimal run takes the paper defaults', () => {
  const run = parseRunYaml(minimal);
  assert.equal(run.spec.iterations, 3);
  assert.equal(run.spec.reference, 'initial');
  assert.deepEqual(run.spec.generation, {
    samplesPerPrompt: 8,
    temperature: 1,
    topP: 1,
    topK: 0,
    maxNewTokens: 48,
    seed: 42,
  });
  assert.equal(run.spec.pairs.strategy, 'maxMin');
  assert.equal(run.spec.dpo.beta, 0.1);
  assert.equal(run.spec.dpo.learningRate, 5e-7);
  assert.equal(run.spec.dpo.nllWeight, 0);
  assert.equal(run.spec.prompts.perIteration, 256);
  assert.equal(run.spec.judge.lengthPenalty, 0.001);
  // The built-in engine everywhere, on CPU.
  assert.equal(run.spec.placement.train.gpus, 0);
  assert.deepEqual(
    [run.spec.engines.generate.type, run.spec.engines.judge.type, run.spec.engines.train.type],
    ['builtin', 'builtin', 'builtin'],
  );
});

test('lengthPenalty accepts "auto" and numbers >= 0', () => {
  assert.equal(
    parseRunYaml(minimal.replace('lengthPenalty: 0.001', 'lengthPenalty: auto, task: sentiment')).spec.judge
      .lengthPenalty,
    'auto',
  );
  // "auto" regresses the reward model's score on a gold reward: it needs a reward judge and a task.
  assert.deepEqual(problems(minimal.replace('lengthPenalty: 0.001', 'lengthPenalty: auto')), [
    'spec.judge.lengthPenalty: "auto" regresses the reward on a gold reward: set spec.judge.task, or give a number',
  ]);
  assert.deepEqual(problems(minimal.replace('lengthPenalty: 0.001', 'lengthPenalty: soon')), [
    'spec.judge.lengthPenalty: must be a number or "auto", got string "soon"',
  ]);
});

test('every bad field is listed with its path', () => {
  const bad =
    minimal.replace('metadata: {name: sentiment-demo}', 'metadata: {name: Sentiment_Demo}') +
    `  iterations: 0
  dpo: {beta: 0, lossType: kto, batchsize: 4}
  generation: {topP: 1.5, samplesPerPrompt: 2.5}
  pairs: {strategy: best}
`;
  assert.deepEqual(problems(bad).sort(), [
    'metadata.name: must be a lowercase DNS label (a-z, 0-9, -; at most 63 characters)',
    'spec.dpo.batchsize: is not a field here (known: beta, learningRate, epochs, batchSize, gradAccum, warmupRatio, schedule, lossType, labelSmoothing, nllWeight, maxGradNorm)',
    'spec.dpo.beta: must be > 0, got 0',
    'spec.dpo.lossType: must be one of sigmoid, ipo, hinge, got "kto"',
    'spec.generation.samplesPerPrompt: must be an integer, got 2.5',
    'spec.generation.topP: must be <= 1, got 1.5',
    'spec.iterations: must be >= 1, got 0',
    'spec.pairs.strategy: must be one of maxMin, maxRandom, random, got "best"',
  ]);
});

test('required fields, kinds, URIs and cross-field rules', () => {
  assert.deepEqual(problems('apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {}\n').sort(), [
    'apiVersion: must be rlhf.dev/v1alpha1, got "v1"',
    'kind: must be RLHFRun, got "Pod"',
    'spec.judge: is required',
  ]);
  assert.deepEqual(
    problems(
      'apiVersion: rlhf.dev/v1alpha1\nkind: RLHFRun\nmetadata: {name: x}\nspec: {judge: {type: gold, task: sentiment}}\n',
    ).sort(),
    [
      'spec.policy.model: is required unless spec.setup trains the policy',
      'spec.prompts.dataset: is required unless spec.setup synthesizes prompts',
    ],
  );
  // With setup, pi_0, the prompts and the reward model come from the setup stages.
  const withSetup = parseRunYaml(
    'apiVersion: rlhf.dev/v1alpha1\nkind: RLHFRun\nmetadata: {name: x}\nspec: {setup: {task: sentiment}, judge: {type: reward}}\n',
  );
  assert.equal(withSetup.spec.setup?.sft.epochs, 8);
  assert.equal(parseRunYaml(minimal).spec.setup, undefined);
  // Setup trains the preference model too when the judge is one (or when setup.preferenceModel says so).
  const pmJudge = parseRunYaml(
    'apiVersion: rlhf.dev/v1alpha1\nkind: RLHFRun\nmetadata: {name: x}\nspec: {setup: {task: sentiment}, judge: {type: preference}}\n',
  );
  assert.equal(pmJudge.spec.setup?.preferenceModel, undefined, 'an absent section stays absent');
  const pmSection = parseRunYaml(
    'apiVersion: rlhf.dev/v1alpha1\nkind: RLHFRun\nmetadata: {name: x}\nspec: {setup: {task: sentiment, preferenceModel: {epochs: 2}}, judge: {type: reward}}\n',
  );
  assert.deepEqual(pmSection.spec.setup?.preferenceModel, { epochs: 2, learningRate: 1e-3, batchSize: 32 });
  assert.match(
    problems(minimal.replace('nats-obj://rlhf-models/sft', 'gs://bucket/sft'))[0] ?? '',
    /^spec\.policy\.model: "gs:\/\/bucket\/sft" is not valid/,
  );
  // Models come from nats-obj://, s3://, file:// or the Hub; datasets from all but the Hub.
  for (const model of ['s3://my-models/sft', 'hf://HuggingFaceTB/SmolLM2-135M', 'hf://org/name@0123abc'])
    assert.equal(
      parseRunYaml(minimal.replace('nats-obj://rlhf-models/sft', model)).spec.policy?.model,
      model,
    );
  const hfJudge = parseRunYaml(minimal.replace('nats-obj://rlhf-models/rm', 'hf://org/reward-model'));
  assert.equal(hfJudge.spec.judge.model, 'hf://org/reward-model');
  const s3Data = parseRunYaml(
    minimal.replace('nats-obj://rlhf-data/prompts.jsonl', 's3://my-data/p.parquet'),
  );
  assert.equal(s3Data.spec.prompts.dataset, 's3://my-data/p.parquet');
  assert.match(
    problems(minimal.replace('nats-obj://rlhf-data/prompts.jsonl', 'hf://org/prompts'))[0] ?? '',
    /^spec\.prompts\.dataset: "hf:\/\/org\/prompts" is not valid/,
  );
  assert.match(
    problems(minimal.replace('nats-obj://rlhf-models/sft', 's3://Bad_Bucket/sft'))[0] ?? '',
    /^spec\.policy\.model: /,
  );
  assert.deepEqual(
    problems(minimal.replace('type: reward, model: nats-obj://rlhf-models/rm, ', 'type: preference, ')),
    ['spec.judge.model: is required for judge type preference unless spec.setup trains it'],
  );
  assert.deepEqual(
    problems(minimal.replace('type: reward, model: nats-obj://rlhf-models/rm, ', 'type: gold, ')),
    ['spec.judge.task: is required for judge type gold (which gold reward?)'],
  );
  assert.match(problems('spec: [')[0] ?? '', /is not valid YAML/);
});

test('placement resources: Kubernetes quantities, unknown keys refused, requests not above limits', () => {
  const withResources = (resources: string) =>
    `${minimal}  placement:\n    train: {gpus: 0, resources: ${resources}}\n`;
  const run = parseRunYaml(
    withResources('{requests: {cpu: 500m, memory: 6Gi}, limits: {cpu: "4", memory: 8Gi}}'),
  );
  assert.deepEqual(run.spec.placement.train.resources, {
    requests: { cpu: '500m', memory: '6Gi' },
    limits: { cpu: '4', memory: '8Gi' },
  });
  assert.equal(run.spec.placement.generate.resources, undefined);
  const bad = problems(withResources('{limits: {cpu: 4 cores, memory: 8GB, nvidia.com/gpu: "1"}}'));
  assert.equal(bad.length, 3, bad.join('\n'));
  assert.match(
    bad.join('\n'),
    /spec\.placement\.train\.resources\.limits\.cpu: "4 cores" is not valid: CPU as a Kubernetes quantity/,
  );
  assert.match(
    bad.join('\n'),
    /spec\.placement\.train\.resources\.limits\.memory: "8GB" is not valid: .*"8Gi"/,
  );
  assert.match(bad.join('\n'), /spec\.placement\.train\.resources\.limits\.nvidia\.com\/gpu: /);
  assert.deepEqual(
    problems(withResources('{requests: {cpu: "2", memory: 9Gi}, limits: {cpu: 1500m, memory: 8Gi}}')),
    [
      'spec.placement.train.resources.requests.cpu: 2 is more than the limit 1500m: raise limits.cpu or lower the request',
      'spec.placement.train.resources.requests.memory: 9Gi is more than the limit 8Gi: raise limits.memory or lower the request',
    ],
  );
  // Equal is fine, and units mix: 1 = 1000m, 1Gi > 1G.
  parseRunYaml(withResources('{requests: {cpu: "1", memory: 1G}, limits: {cpu: 1000m, memory: 1Gi}}'));
});
