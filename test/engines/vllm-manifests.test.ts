/**
 * The vLLM server of a sampling unit as manifests: a valid apps/v1 Deployment and v1 Service
 * (kubernetes-models), the run's GPU placement on the server (not on the stage pod), the policy exported in
 * init containers of the platform image, readiness on /health, ownership by the unit's owner, the chart's
 * image/command/port/args, and the endpoint the stage Job is given.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  engineModelEnv,
  engineUrlEnv,
  parseVllmConfig,
  stageJob,
  usesVllm,
  vllmDeployment,
  vllmEndpointFor,
  vllmServerName,
  vllmService,
} from '@rlhf/controller';
import { RlhfError } from '@rlhf/platform/core';
import { parseRunYaml } from '@rlhf/run-spec';
import { iterationUnit, setupUnit } from '@rlhf/workflow';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Service } from 'kubernetes-models/v1/Service';

const run = parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: demo, namespace: team-a}
spec:
  policy: {model: nats-obj://rlhf-models/sft}
  judge: {type: reward, model: nats-obj://rlhf-models/rm, lengthPenalty: 0.001}
  prompts: {dataset: nats-obj://rlhf-data/prompts.jsonl}
  generation: {seed: 1234}
  engines: {generate: {type: vllm}}
  placement:
    generate:
      replicas: 2
      gpus: 4
      nodeSelector: {gpu: a100}
      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
      resources: {requests: {memory: 64Gi}}
    evaluate: {gpus: 1}
    schedulerName: volcano
`);
const owner = {
  apiVersion: 'rlhf.dev/v1alpha1',
  kind: 'RLHFIteration',
  name: 'demo-1',
  uid: 'u1',
  controller: true,
  blockOwnerDeletion: true,
};
const job = {
  image: 'ghcr.io/example/rlhf:1.0',
  natsUrl: 'nats://nats:4222',
  artifactVolumes: [{ name: 'data', mountPath: '/data', claimName: 'rlhf-data' }],
};
const vllm = parseVllmConfig(
  JSON.stringify({
    image: 'vllm/vllm-openai:v0.11.0',
    port: 8100,
    args: ['--max-model-len', '4096'],
    command: [],
    env: { VLLM_CPU_KVCACHE_SPACE: '4' },
  }),
);
const input = (
  unit = iterationUnit(1, 'generate'),
  policy = 'nats-obj://rlhf-runs/team-a/demo/1/policy',
) => ({
  run: { name: 'demo', namespace: 'team-a', spec: run.spec },
  unit,
  policy,
  owner,
  vllm,
  job,
});

test('the generate server: valid Deployment with the GPUs, placement, export and probe', () => {
  const d = vllmDeployment(input());
  new Deployment(d as never).validate();
  assert.equal(d.metadata?.name, 'vllm-demo-1-generate');
  assert.deepEqual(d.metadata?.ownerReferences, [owner]);
  assert.equal(d.spec?.replicas, 2, 'one server per replica of the generate group');
  const pod = d.spec?.template.spec;
  assert.deepEqual(pod?.nodeSelector, { gpu: 'a100' });
  assert.equal(pod?.tolerations?.[0]?.key, 'nvidia.com/gpu');
  assert.equal(pod?.schedulerName, 'volcano');
  const c = pod?.containers[0];
  assert.equal(c?.image, 'vllm/vllm-openai:v0.11.0');
  assert.equal(c?.command, undefined, 'an empty command keeps the image entrypoint');
  assert.equal(c?.resources?.limits?.['nvidia.com/gpu'], '4');
  assert.equal(c?.resources?.requests?.memory, '64Gi');
  assert.deepEqual(c?.args, [
    '--model',
    '/models/hf',
    '--served-model-name',
    'policy',
    '--port',
    '8100',
    '--seed',
    '1234',
    '--tensor-parallel-size',
    '4',
    '--max-model-len',
    '4096',
  ]);
  assert.deepEqual(c?.readinessProbe?.httpGet, { path: '/health', port: 'http' });
  assert.equal(c?.ports?.[0]?.containerPort, 8100);
  assert.deepEqual(c?.env, [{ name: 'VLLM_CPU_KVCACHE_SPACE', value: '4' }]);
  // The policy is pulled from the store and exported by the platform image, never by the controller.
  const init = pod?.initContainers ?? [];
  assert.deepEqual(
    init.map((i) => [i.name, i.image, i.args]),
    [
      [
        'pull-policy',
        job.image,
        ['model', 'pull', '--from', 'nats-obj://rlhf-runs/team-a/demo/1/policy', '--out', '/models/policy'],
      ],
      ['export-policy', job.image, ['model', 'export', '--model', '/models/policy', '--out', '/models/hf']],
    ],
  );
  const env = Object.fromEntries((init[0]?.env ?? []).map((e) => [e.name, e.value]));
  assert.equal(env.NATS_URL, 'nats://nats:4222');
  assert.equal(env.RLHF_ARTIFACT_ROOTS, '/data');
  // The Deployment's selector matches its own pods only.
  for (const [k, v] of Object.entries(d.spec?.selector.matchLabels ?? {}))
    assert.equal(d.spec?.template.metadata?.labels?.[k], v);
});

test('a file:// policy is exported from the artifact volume, without a pull', () => {
  const d = vllmDeployment(input(iterationUnit(2, 'evaluate'), 'file:///data/runs/demo/2/policy'));
  new Deployment(d as never).validate();
  const init = d.spec?.template.spec?.initContainers ?? [];
  assert.deepEqual(
    init.map((i) => i.args),
    [['model', 'export', '--model', '/data/runs/demo/2/policy', '--out', '/models/hf']],
  );
  const c = d.spec?.template.spec?.containers[0];
  assert.equal(c?.resources?.limits?.['nvidia.com/gpu'], '1', 'evaluate takes placement.evaluate');
  assert.ok(!c?.args?.includes('--tensor-parallel-size'), 'one GPU: no tensor parallelism');
});

test('the Service selects the server pods; the endpoint names it', () => {
  const s = vllmService(input());
  new Service(s as never).validate();
  const d = vllmDeployment(input());
  assert.equal(s.metadata?.name, d.metadata?.name);
  assert.deepEqual(s.metadata?.ownerReferences, [owner]);
  for (const [k, v] of Object.entries(s.spec?.selector ?? {}))
    assert.equal(d.spec?.template.metadata?.labels?.[k], v);
  assert.equal(s.spec?.ports?.[0]?.port, 8100);
  assert.deepEqual(
    vllmEndpointFor({ name: 'demo', namespace: 'team-a' }, iterationUnit(1, 'generate'), 8100),
    {
      url: 'http://vllm-demo-1-generate.team-a.svc:8100/v1',
      model: 'policy',
    },
  );
});

test('names are DNS-1035 labels of at most 63 characters, distinct per unit', () => {
  const long = 'r'.repeat(60);
  const a = vllmServerName(long, iterationUnit(12, 'generate'));
  const b = vllmServerName(long, iterationUnit(12, 'evaluate'));
  for (const n of [a, b, vllmServerName('9lives', iterationUnit(1, 'generate'))]) {
    assert.ok(n.length <= 63, n);
    assert.match(n, /^[a-z]([-a-z0-9]*[a-z0-9])?$/);
  }
  assert.notEqual(a, b);
});

test('which units sample on vLLM', () => {
  assert.ok(usesVllm(run.spec, iterationUnit(1, 'generate')));
  assert.ok(usesVllm(run.spec, iterationUnit(1, 'evaluate')));
  assert.ok(!usesVllm(run.spec, iterationUnit(1, 'judge')));
  assert.ok(!usesVllm(run.spec, iterationUnit(1, 'train')));
  assert.ok(usesVllm(run.spec, setupUnit()), 'baseline of a run that starts from spec.policy');
  const withSetup = { ...run.spec, setup: {} as never };
  assert.ok(!usesVllm(withSetup, setupUnit()), 'setup trains pi_0 in its own Job: nothing to serve first');
  const builtin = { ...run.spec, engines: { ...run.spec.engines, generate: { type: 'builtin' as const } } };
  assert.ok(!usesVllm(builtin, iterationUnit(1, 'generate')));
});

test('the stage Job carries the endpoint it is given, and no GPU', () => {
  const env = [
    { name: engineUrlEnv, value: 'http://vllm-demo-1-generate.team-a.svc:8100/v1' },
    { name: engineModelEnv, value: 'policy' },
  ];
  const j = stageJob({
    run: { name: 'demo', namespace: 'team-a', spec: run.spec },
    unit: iterationUnit(1, 'generate'),
    owner,
    config: job,
    env,
  });
  new Job(j as never).validate();
  const c = j.spec?.template.spec?.containers[0];
  const vars = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
  assert.equal(vars[engineUrlEnv], env[0]?.value);
  assert.equal(vars[engineModelEnv], 'policy');
  assert.equal(c?.resources?.limits?.['nvidia.com/gpu'], undefined);
});

test('RLHF_VLLM: defaults when unset; each bad field named', () => {
  assert.equal(parseVllmConfig(undefined).port, 8000);
  assert.deepEqual(parseVllmConfig('{"command": ["vllm", "serve"]}').command, ['vllm', 'serve']);
  const refused = (raw: string, field: string) =>
    assert.throws(
      () => parseVllmConfig(raw),
      (e: unknown) => e instanceof RlhfError && e.field === field,
      raw,
    );
  refused('not json', 'RLHF_VLLM');
  refused('[]', 'RLHF_VLLM');
  refused('{"port": 0}', 'RLHF_VLLM.port');
  refused('{"port": "8000"}', 'RLHF_VLLM.port');
  refused('{"image": "a b"}', 'RLHF_VLLM.image');
  refused('{"args": [1]}', 'RLHF_VLLM.args');
  refused('{"imagePullPolicy": "Sometimes"}', 'RLHF_VLLM.imagePullPolicy');
  refused('{"env": ["A=1"]}', 'RLHF_VLLM.env');
  refused('{"env": {"1A": "x"}}', 'RLHF_VLLM.env.1A');
  refused('{"env": {"A": 1}}', 'RLHF_VLLM.env.A');
  assert.equal(parseVllmConfig('{"env": {}}').env, undefined, 'an empty env sets nothing');
});
