/**
 * The TrainJob manifest (services/controller/src/trainjob/trainjob-manifest.ts) against Kubeflow Trainer's
 * own CRD (test/fixtures/kubeflow, vendored): valid by its OpenAPI v3 schema and CEL rules, with the runtime,
 * the TRL command line, numNodes, per-node resources, the Kueue queue label, the owner reference and the
 * artifact volumes where Kubeflow reads them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { defaultTrainJobConfig, trainJobManifest, trainJobName } from '@rlhf/controller';
import { type OpenApiSchema, parseRunYaml, validateCustomResource } from '@rlhf/run-spec';
import { parseAllDocuments } from 'yaml';

const crdText = readFileSync(
  new URL('../fixtures/kubeflow/trainer.kubeflow.org_trainjobs.yaml', import.meta.url),
  'utf8',
);
const crd = parseAllDocuments(crdText)
  .map((d) => d.toJS())
  .find((d) => d?.kind === 'CustomResourceDefinition');
const version = crd.spec.versions.find((v: { name: string }) => v.name === 'v1alpha1');
const schema = version.schema.openAPIV3Schema as OpenApiSchema;

const run = (extra: string) =>
  parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: big, namespace: team-a}
spec:
  policy: {model: file:///artifacts/sft}
  judge: {type: reward, model: file:///artifacts/rm, lengthPenalty: 0.001}
  prompts: {dataset: file:///artifacts/prompts.jsonl}
  reference: previous
  dpo: {batchSize: 64, gradAccum: 2, nllWeight: 0.2}
${extra}
${extra.includes('placement:') ? '' : '  placement:\n'}    volumes: [{name: artifacts, claimName: rlhf-artifacts, mountPath: /artifacts}]`);

const owner = {
  apiVersion: 'rlhf.dev/v1alpha1',
  kind: 'RLHFIteration',
  name: 'big-2',
  uid: 'u2',
  controller: true,
};
const paths = {
  model: '/artifacts/big/2/policy-hf',
  reference: '/artifacts/big/2/policy-hf',
  pairs: '/artifacts/big/2/pairs-trl',
  output: '/artifacts/big/2/trained-hf',
};
const volumes = [{ name: 'artifacts', mountPath: '/artifacts', claimName: 'rlhf-artifacts' }];

interface TrainJobShape {
  metadata: { name: string; labels: Record<string, string>; ownerReferences: unknown[] };
  spec: {
    suspend?: boolean;
    runtimeRef: { name: string };
    trainer: {
      image?: string;
      command: string[];
      args: string[];
      numNodes: number;
      numProcPerNode: number;
      resourcesPerNode: unknown;
    };
    runtimePatches: Array<{
      trainingRuntimeSpec: {
        template: {
          spec: {
            replicatedJobs: Array<{
              name: string;
              template: { spec: { template: { spec: { volumes: unknown; containers: unknown } } } };
            }>;
          };
        };
      };
    }>;
  };
}

function build(extra: string, config = defaultTrainJobConfig) {
  const r = run(extra);
  return trainJobManifest({
    run: { name: r.metadata.name, namespace: r.metadata.namespace ?? 'default', spec: r.spec },
    iteration: 2,
    owner,
    paths,
    config,
    artifactVolumes: volumes,
    seed: 44,
  }) as unknown as TrainJobShape;
}

test('a GPU TrainJob with a queue is valid by the Kubeflow Trainer CRD and carries the run placement', () => {
  const tj = build(
    `  engines: {train: {type: trainjob, trainJob: {runtime: torch-gpu, numNodes: 2}}}
  placement:
    train: {replicas: 1, gpus: 4, resources: {requests: {cpu: '16', memory: 64Gi}, limits: {memory: 64Gi}}}
    queue: research`,
    { ...defaultTrainJobConfig, image: 'registry.example/trl:1.16.0' },
  );
  const { problems } = validateCustomResource(schema, tj);
  assert.deepEqual(problems, []);
  assert.equal(tj.metadata.name, 'big-2-trl');
  assert.deepEqual(tj.metadata.ownerReferences, [owner]);
  assert.equal(tj.metadata.labels['kueue.x-k8s.io/queue-name'], 'research');
  assert.equal(tj.spec.suspend, true);
  assert.deepEqual(tj.spec.runtimeRef, {
    name: 'torch-gpu',
    apiGroup: 'trainer.kubeflow.org',
    kind: 'ClusterTrainingRuntime',
  });
  const t = tj.spec.trainer;
  assert.equal(t.image, 'registry.example/trl:1.16.0');
  assert.deepEqual(t.command, ['trl', 'dpo']);
  assert.equal(t.numNodes, 2);
  assert.equal(t.numProcPerNode, 4);
  assert.deepEqual(t.resourcesPerNode, {
    requests: { cpu: '16', memory: '64Gi' },
    limits: { memory: '64Gi', 'nvidia.com/gpu': '4' },
  });
  // 64 pairs a step, 2 micro-batches, 2 nodes x 4 GPUs: 4 pairs per device and micro-batch.
  const at = (flag: string) => t.args[t.args.indexOf(flag) + 1];
  assert.equal(at('--per_device_train_batch_size'), '4');
  assert.equal(at('--model_name_or_path'), paths.model);
  assert.equal(at('--dataset_name'), paths.pairs);
  assert.equal(at('--output_dir'), paths.output);
  assert.equal(at('--seed'), '44');
  assert.equal(t.args.includes('--use_cpu'), false);
  const patch = tj.spec.runtimePatches[0]?.trainingRuntimeSpec.template.spec.replicatedJobs[0];
  assert.ok(patch);
  assert.equal(patch.name, 'node');
  const pod = patch.template.spec.template.spec;
  assert.deepEqual(pod.volumes, [
    { name: 'artifacts', persistentVolumeClaim: { claimName: 'rlhf-artifacts' } },
  ]);
  assert.deepEqual(pod.containers, [
    { name: 'node', volumeMounts: [{ name: 'artifacts', mountPath: '/artifacts' }] },
  ]);
});

test('a CPU TrainJob: chart default runtime, the runtime image, --use_cpu, not suspended', () => {
  const tj = build(`  engines: {train: {type: trainjob}}
  placement:
    train: {replicas: 1, gpus: 0}`);
  assert.deepEqual(validateCustomResource(schema, tj).problems, []);
  assert.equal(tj.spec.runtimeRef.name, defaultTrainJobConfig.runtime);
  assert.equal('image' in tj.spec.trainer, false);
  assert.equal('suspend' in tj.spec, false);
  assert.ok(tj.spec.trainer.args.includes('--use_cpu'));
  assert.deepEqual(tj.spec.trainer.resourcesPerNode, {});
  assert.equal(tj.spec.trainer.numProcPerNode, 1);
});

test('the CRD catches what the schema forbids, so the validation is not vacuous', () => {
  const negative = build(`  engines: {train: {type: trainjob}}`);
  negative.spec.trainer.numNodes = -1;
  assert.deepEqual(
    validateCustomResource(schema, negative).problems.map((p) => p.path),
    ['spec.trainer.numNodes'],
  );
  const badName = build(`  engines: {train: {type: trainjob}}`);
  badName.metadata.name = 'Bad_Name';
  assert.deepEqual(
    validateCustomResource(schema, badName).problems.map((p) => p.message),
    ['metadata.name must match RFC 1035 DNS label format'],
  );
});

test('long run names are cut to 63 characters with a digest', () => {
  const name = trainJobName('r'.repeat(80), 12);
  assert.equal(name.length <= 63, true);
  assert.match(name, /^r+-12-trl-[0-9a-f]{8}$/);
  assert.notEqual(trainJobName(`${'r'.repeat(80)}a`, 12), name);
});
