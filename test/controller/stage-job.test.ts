/**
 * The stage Job manifest: valid batch/v1 (kubernetes-models), the run's placement on the pods, GPUs in
 * limits, retries as backoffLimit, the run as RLHF_RUN, a gang-scheduler queue as a suspended Job,
 * ONNX Runtime's threads from a CPU limit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  hfVolume,
  ortThreadsEnv,
  parseArtifactVolumes,
  parseHfJobConfig,
  parseS3JobConfig,
  stageJob,
  stageJobName,
} from '@rlhf/controller';
import { parseRunYaml } from '@rlhf/run-spec';
import { iterationUnit, setupUnit } from '@rlhf/workflow';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { resourceFieldValue } from '../kube/fake-kubelet/resource-field-ref.js';

const run = parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: demo, namespace: team-a}
spec:
  policy: {model: nats-obj://rlhf-models/sft}
  judge: {type: reward, model: nats-obj://rlhf-models/rm, lengthPenalty: 0.001}
  prompts: {dataset: nats-obj://rlhf-data/prompts.jsonl}
  maxRetries: 2
  engines: {generate: {type: vllm}}
  placement:
    generate:
      replicas: 3
      gpus: 2
      nodeSelector: {gpu: a100}
      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
      priorityClassName: rlhf-high
    schedulerName: volcano
    queue: research
`);
const owner = {
  apiVersion: 'rlhf.dev/v1alpha1',
  kind: 'RLHFIteration',
  name: 'demo-1',
  uid: 'u1',
  controller: true,
};
const config = { image: 'ghcr.io/example/rlhf:1.0', natsUrl: 'nats://nats:4222' };

test('a generate Job carries the run placement, GPU limits, retries and the run itself', () => {
  const job = stageJob({
    run: { name: 'demo', namespace: 'team-a', spec: run.spec },
    unit: iterationUnit(1, 'generate'),
    owner,
    config,
  });
  new Job(job as never).validate();
  assert.equal(job.metadata?.name, 'demo-1-generate');
  assert.equal(job.spec?.backoffLimit, 2);
  assert.equal(job.spec?.parallelism, 3);
  assert.equal(job.spec?.suspend, true, 'a queued Job waits for its queue to admit it');
  assert.equal(job.metadata?.labels?.['kueue.x-k8s.io/queue-name'], 'research');
  const pod = job.spec?.template.spec;
  assert.deepEqual(pod?.nodeSelector, { gpu: 'a100' });
  assert.equal(pod?.tolerations?.[0]?.key, 'nvidia.com/gpu');
  assert.equal(pod?.priorityClassName, 'rlhf-high');
  assert.equal(pod?.schedulerName, 'volcano');
  assert.equal(pod?.restartPolicy, 'Never');
  const c = pod?.containers[0];
  assert.deepEqual(c?.args, ['stage', 'generate', '--iteration', '1']);
  // Generation is handed to vLLM: its server takes the group's GPUs, the stage pod that drives it none.
  assert.equal(c?.resources?.limits?.['nvidia.com/gpu'], undefined);
  assert.equal(c?.securityContext?.readOnlyRootFilesystem, true);
  const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
  assert.equal(env.NATS_URL, 'nats://nats:4222');
  assert.equal(env.RLHF_STAGE_REPLICAS, '3');
  const carried = JSON.parse(env.RLHF_RUN as string);
  assert.deepEqual(carried.metadata, { name: 'demo', namespace: 'team-a' });
  assert.deepEqual(carried.spec, run.spec);
  assert.deepEqual(job.metadata?.ownerReferences, [owner]);
});

test('pairing and setup need no GPU; NATS from a Secret stays out of the spec', () => {
  const pair = stageJob({
    run: { name: 'demo', namespace: 'team-a', spec: run.spec },
    unit: iterationUnit(2, 'pair'),
    owner,
    config: { ...config, natsSecret: { name: 'nats-creds', key: 'url' } },
  });
  new Job(pair as never).validate();
  const c = pair.spec?.template.spec?.containers[0];
  assert.equal(c?.resources?.limits, undefined);
  assert.deepEqual(c?.env?.[0], {
    name: 'NATS_URL',
    valueFrom: { secretKeyRef: { name: 'nats-creds', key: 'url' } },
  });
  const setup = stageJob({
    run: { name: 'demo', namespace: 'team-a', spec: run.spec },
    unit: setupUnit(),
    owner,
    config,
  });
  assert.deepEqual(setup.spec?.template.spec?.containers[0]?.args, ['stage', 'setup', '--iteration', '0']);
  // Setup trains on the built-in engine: CPU only, one CPU requested by default.
  assert.deepEqual(setup.spec?.template.spec?.containers[0]?.resources, { requests: { cpu: '1' } });
});

test('Job names are DNS labels even for long run names, and distinct per unit', () => {
  const long = 'a'.repeat(63);
  const names = [iterationUnit(12, 'evaluate'), iterationUnit(12, 'generate'), setupUnit()].map((u) =>
    stageJobName(long, u),
  );
  for (const n of names) assert.match(n, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  assert.equal(new Set(names).size, 3);
  assert.equal(stageJobName('demo', iterationUnit(3, 'train')), 'demo-3-train');
});

test("ONNX Runtime's threads come from the stage container's CPU limit, and only when it has one", () => {
  // This run sets no resources: GPU units limit GPUs only, CPU units only request a CPU.
  for (const unit of [iterationUnit(1, 'generate'), iterationUnit(1, 'pair'), setupUnit()]) {
    const job = stageJob({ run: { name: 'demo', namespace: 'team-a', spec: run.spec }, unit, owner, config });
    const c = job.spec?.template.spec?.containers[0];
    assert.equal(c?.resources?.limits?.cpu, undefined, unit.stage);
    assert.equal(
      c?.env?.find((e) => e.name === 'RLHF_ORT_THREADS'),
      undefined,
      `${unit.stage}: without a CPU limit ORT keeps its default`,
    );
    assert.deepEqual(ortThreadsEnv(c!.name, c!.resources!), []);
  }
  // With one, the kubelet resolves limits.cpu rounded up to whole CPUs (500m -> 1) into the variable.
  const limited = { limits: { cpu: '500m', 'nvidia.com/gpu': '1' } };
  const env = ortThreadsEnv('stage', limited);
  assert.deepEqual(env, [
    {
      name: 'RLHF_ORT_THREADS',
      valueFrom: { resourceFieldRef: { containerName: 'stage', resource: 'limits.cpu', divisor: '1' } },
    },
  ]);
  const stage = { name: 'stage', resources: limited };
  const ref = env[0]!.valueFrom!.resourceFieldRef!;
  assert.equal(resourceFieldValue({ spec: { containers: [stage] } }, stage, 'RLHF_ORT_THREADS', ref), '1');
});

test("a group's CPU and memory reach its pods; setup takes training's; GPUs stay with the engine; a CPU limit sizes ORT", () => {
  const sized = parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: sized, namespace: team-a}
spec:
  policy: {model: nats-obj://rlhf-models/sft}
  judge: {type: reward, model: nats-obj://rlhf-models/rm, lengthPenalty: 0.001}
  prompts: {dataset: nats-obj://rlhf-data/prompts.jsonl}
  reference: previous
  engines: {train: {type: trainjob}}
  placement:
    train: {gpus: 1, resources: {requests: {cpu: "3", memory: 6Gi}, limits: {cpu: "4", memory: 8Gi}}}
    evaluate: {gpus: 0, resources: {limits: {memory: 4Gi}}}
    judge: {gpus: 0, resources: {requests: {cpu: 250m}}}
    volumes: [{name: work, claimName: rlhf-work, mountPath: /work}]
`);
  const container = (unit: ReturnType<typeof setupUnit>) => {
    const job = stageJob({
      run: { name: 'sized', namespace: 'team-a', spec: sized.spec },
      unit,
      owner,
      config,
    });
    new Job(job as never).validate();
    const pod = job.spec?.template.spec;
    const c = pod?.containers[0];
    assert.ok(pod && c);
    return { pod, c };
  };
  for (const unit of [iterationUnit(1, 'train'), setupUnit()]) {
    const { pod, c } = container(unit);
    // The TrainJob takes the train group's GPU; the stage pod that drives it and setup's built-in
    // training take none.
    assert.deepEqual(c.resources, {
      requests: { cpu: '3', memory: '6Gi' },
      limits: { cpu: '4', memory: '8Gi' },
    });
    const threads = c.env?.find((e) => e.name === 'RLHF_ORT_THREADS');
    assert.ok(threads?.valueFrom?.resourceFieldRef, `${unit.stage}: the CPU limit sizes ORT's threads`);
    assert.equal(
      resourceFieldValue({ spec: pod }, c, 'RLHF_ORT_THREADS', threads.valueFrom.resourceFieldRef),
      '4',
    );
  }
  // No CPU figure and no GPU: the 1-CPU request stays beside the memory limit.
  const evaluate = container(iterationUnit(1, 'evaluate')).c;
  assert.deepEqual(evaluate.resources, { requests: { cpu: '1' }, limits: { memory: '4Gi' } });
  assert.equal(
    evaluate.env?.find((e) => e.name === 'RLHF_ORT_THREADS'),
    undefined,
  );
  // A CPU request of its own replaces the default one.
  assert.deepEqual(container(iterationUnit(1, 'judge')).c.resources, { requests: { cpu: '250m' } });
});

test('artifact volumes reach the stage pods as mounts and artifact roots; without them the pods take no file://', () => {
  const volumes = [
    { name: 'datasets', mountPath: '/data/rlhf', claimName: 'rlhf-datasets', readOnly: true },
    { name: 'outputs', mountPath: '/data/out', claimName: 'rlhf-outputs' },
  ];
  const job = stageJob({
    run: { name: 'demo', namespace: 'team-a', spec: run.spec },
    unit: iterationUnit(1, 'train'),
    owner,
    config: { ...config, artifactVolumes: volumes },
  });
  new Job(job as never).validate();
  const pod = job.spec?.template.spec;
  const c = pod?.containers[0];
  const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
  assert.equal(env.RLHF_ARTIFACT_ROOTS, '/data/rlhf:/data/out');
  assert.deepEqual(c?.volumeMounts?.slice(1), [
    { name: 'artifacts-datasets', mountPath: '/data/rlhf', readOnly: true },
    { name: 'artifacts-outputs', mountPath: '/data/out' },
  ]);
  assert.deepEqual(pod?.volumes?.slice(1), [
    { name: 'artifacts-datasets', persistentVolumeClaim: { claimName: 'rlhf-datasets', readOnly: true } },
    { name: 'artifacts-outputs', persistentVolumeClaim: { claimName: 'rlhf-outputs' } },
  ]);
  const plain = stageJob({
    run: { name: 'demo', namespace: 'team-a', spec: run.spec },
    unit: iterationUnit(1, 'train'),
    owner,
    config,
  });
  const plainEnv = plain.spec?.template.spec?.containers[0]?.env ?? [];
  assert.ok(!plainEnv.some((e) => e.name === 'RLHF_ARTIFACT_ROOTS'));
  // What the chart hands the controller is checked before any Job is made from it.
  assert.deepEqual(parseArtifactVolumes(JSON.stringify(volumes)), volumes);
  assert.deepEqual(parseArtifactVolumes(undefined), []);
  for (const bad of [
    '[{"name":"x","mountPath":"rel","claimName":"c"}]',
    '{}',
    'not json',
    '[{"name":"Bad_Name","mountPath":"/a","claimName":"c"}]',
  ])
    assert.throws(
      () => parseArtifactVolumes(bad),
      (e: unknown) => ((e as { field?: string }).field ?? '').startsWith('RLHF_WORKER_ARTIFACT_VOLUMES'),
    );
});

test('NATS credential files reach stage pods as NATS_* paths into Secrets mounted read-only', () => {
  const job = stageJob({
    run: { name: 'demo', namespace: 'team-a', spec: run.spec },
    unit: iterationUnit(1, 'generate'),
    owner,
    config: {
      ...config,
      natsAuth: {
        env: {
          NATS_USER: 'rlhf',
          NATS_PASSWORD_FILE: '/etc/rlhf/nats-auth/password',
          NATS_TLS_CA: '/etc/rlhf/nats-tls/ca.crt',
        },
        secrets: [
          { secretName: 'rlhf-nats-auth', mountPath: '/etc/rlhf/nats-auth' },
          { secretName: 'rlhf-nats-tls', mountPath: '/etc/rlhf/nats-tls' },
        ],
      },
    },
  });
  new Job(job as never).validate();
  const pod = job.spec?.template.spec;
  const env = Object.fromEntries((pod?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
  assert.equal(env.NATS_USER, 'rlhf');
  assert.equal(env.NATS_PASSWORD_FILE, '/etc/rlhf/nats-auth/password');
  assert.equal(env.NATS_TLS_CA, '/etc/rlhf/nats-tls/ca.crt');
  const mounts = pod?.containers[0]?.volumeMounts ?? [];
  for (const [secretName, mountPath] of [
    ['rlhf-nats-auth', '/etc/rlhf/nats-auth'],
    ['rlhf-nats-tls', '/etc/rlhf/nats-tls'],
  ]) {
    const volume = pod?.volumes?.find((v) => v.secret?.secretName === secretName);
    assert.ok(volume, secretName);
    assert.deepEqual(
      mounts.find((m) => m.name === volume.name),
      { name: volume.name, mountPath, readOnly: true },
    );
  }
});

test("an openai engine's API key reaches the sampling units' pods from its Secret, and no other pod", () => {
  const served = parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: served, namespace: team-a}
spec:
  policy: {model: nats-obj://rlhf-models/sft}
  judge: {type: reward, model: nats-obj://rlhf-models/rm}
  prompts: {dataset: nats-obj://rlhf-data/prompts.jsonl}
  engines:
    generate:
      type: openai
      openai: {url: "http://vllm.team-a:8000/v1", apiKeySecret: {name: vllm-key, key: token}}
`);
  const keyOf = (unit: ReturnType<typeof setupUnit>) => {
    const job = stageJob({
      run: { name: 'served', namespace: 'team-a', spec: served.spec },
      unit,
      owner,
      config,
    });
    new Job(job as never).validate();
    return job.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === 'OPENAI_API_KEY');
  };
  const fromSecret = {
    name: 'OPENAI_API_KEY',
    valueFrom: { secretKeyRef: { name: 'vllm-key', key: 'token' } },
  };
  for (const unit of [setupUnit(), iterationUnit(1, 'generate'), iterationUnit(1, 'evaluate')])
    assert.deepEqual(keyOf(unit), fromSecret, unit.stage);
  for (const stage of ['judge', 'pair', 'train'] as const)
    assert.equal(keyOf(iterationUnit(1, stage)), undefined, stage);
  // A run with the built-in engine has no key anywhere.
  const builtin = stageJob({
    run: { name: 'demo', namespace: 'team-a', spec: run.spec },
    unit: iterationUnit(1, 'generate'),
    owner,
    config,
  });
  assert.equal(
    builtin.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === 'OPENAI_API_KEY'),
    undefined,
  );
});

test('a run brings its own volumes, and the chart its S3 and Hugging Face settings, to every stage pod', () => {
  const byo = parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: byo, namespace: team-a}
spec:
  policy: {model: hf://HuggingFaceTB/SmolLM2-135M-Instruct}
  judge: {type: reward, model: s3://my-models/rm}
  prompts: {dataset: file:///data/prompts.jsonl}
  placement:
    volumes: [{name: data, claimName: team-data, mountPath: /data, readOnly: true}]
`);
  const s3 = parseS3JobConfig(
    JSON.stringify({
      endpoint: 'http://minio.storage.svc:9000',
      region: 'eu-west-1',
      pathStyle: 'true',
      existingSecret: 'rlhf-s3',
      accessKeyIdKey: 'id',
      secretAccessKeyKey: 'secret',
    }),
  );
  const hf = parseHfJobConfig(
    JSON.stringify({
      enabled: true,
      cache: { claimName: 'hf-cache', sizeLimit: '' },
      tokenSecret: { name: 'hf' },
    }),
  );
  const job = stageJob({
    run: { name: 'byo', namespace: 'team-a', spec: byo.spec },
    unit: iterationUnit(1, 'generate'),
    owner,
    config: {
      ...config,
      artifactVolumes: [{ name: 'shared', mountPath: '/shared', claimName: 'rlhf-shared' }],
      s3,
      hf,
    },
  });
  new Job(job as never).validate();
  const pod = job.spec?.template.spec;
  const c = pod?.containers[0];
  const env = new Map((c?.env ?? []).map((e) => [e.name, e]));
  assert.equal(env.get('RLHF_ARTIFACT_ROOTS')?.value, '/shared:/data');
  assert.equal(env.get('AWS_ENDPOINT_URL_S3')?.value, 'http://minio.storage.svc:9000');
  assert.equal(env.get('AWS_REGION')?.value, 'eu-west-1');
  assert.equal(env.get('RLHF_S3_PATH_STYLE')?.value, 'true');
  assert.deepEqual(env.get('AWS_ACCESS_KEY_ID')?.valueFrom?.secretKeyRef, { name: 'rlhf-s3', key: 'id' });
  assert.deepEqual(env.get('AWS_SECRET_ACCESS_KEY')?.valueFrom?.secretKeyRef, {
    name: 'rlhf-s3',
    key: 'secret',
  });
  assert.equal(env.get('HF_HOME')?.value, '/var/cache/huggingface');
  assert.deepEqual(env.get('HF_TOKEN')?.valueFrom?.secretKeyRef, { name: 'hf', key: 'HF_TOKEN' });
  assert.ok(!env.has('HF_HUB_OFFLINE'));
  const mounts = c?.volumeMounts ?? [];
  assert.deepEqual(
    mounts.filter((m) => m.name === 'run-data' || m.name === 'hf-cache'),
    [
      { name: 'run-data', mountPath: '/data', readOnly: true },
      { name: 'hf-cache', mountPath: '/var/cache/huggingface' },
    ],
  );
  const volumes = pod?.volumes ?? [];
  assert.deepEqual(
    volumes.filter((v) => v.name === 'run-data' || v.name === 'hf-cache'),
    [
      { name: 'run-data', persistentVolumeClaim: { claimName: 'team-data', readOnly: true } },
      { name: 'hf-cache', persistentVolumeClaim: { claimName: 'hf-cache' } },
    ],
  );
  // Without the chart's settings the pods get no S3 or Hub variables (their sandbox refuses the URIs).
  const plain = stageJob({
    run: { name: 'byo', namespace: 'team-a', spec: byo.spec },
    unit: iterationUnit(1, 'generate'),
    owner,
    config,
  });
  const plainEnv = (plain.spec?.template.spec?.containers[0]?.env ?? []).map((e) => e.name);
  for (const name of ['AWS_REGION', 'AWS_ACCESS_KEY_ID', 'HF_HOME', 'HF_TOKEN'])
    assert.ok(!plainEnv.includes(name), name);
  // An emptyDir cache of the given size when no claim is named.
  const emptyDir = hfVolume(parseHfJobConfig('{"enabled":true,"cache":{"sizeLimit":"5Gi"}}'));
  assert.deepEqual(emptyDir[0]?.volume, { name: 'hf-cache', emptyDir: { sizeLimit: '5Gi' } });
});

test("the chart's S3 and Hugging Face settings are checked before any Job is made from them", () => {
  assert.equal(parseS3JobConfig(undefined), null);
  assert.equal(parseS3JobConfig('{"endpoint":"","region":""}'), null, 'empty values leave S3 off');
  assert.equal(parseHfJobConfig('{"enabled":false}'), null);
  for (const [raw, field] of [
    ['not json', 'RLHF_WORKER_S3'],
    ['{"endpoint":"minio:9000"}', 'RLHF_WORKER_S3.endpoint'],
    ['{"region":"eu-west-1","pathStyle":"yes"}', 'RLHF_WORKER_S3.pathStyle'],
    ['{"region":"r","existingSecret":"Bad_Secret"}', 'RLHF_WORKER_S3.existingSecret'],
  ] as const)
    assert.throws(
      () => parseS3JobConfig(raw),
      (e: unknown) => (e as { field?: string }).field === field,
      raw,
    );
  for (const [raw, field] of [
    ['[]', 'RLHF_WORKER_HF'],
    ['{"enabled":true,"cache":{"claimName":"Bad"}}', 'RLHF_WORKER_HF.cache.claimName'],
    ['{"enabled":true,"cache":{"sizeLimit":"lots"}}', 'RLHF_WORKER_HF.cache.sizeLimit'],
    ['{"enabled":true,"offline":"yes"}', 'RLHF_WORKER_HF.offline'],
  ] as const)
    assert.throws(
      () => parseHfJobConfig(raw),
      (e: unknown) => (e as { field?: string }).field === field,
      raw,
    );
});
