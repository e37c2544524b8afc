/**
 * controller.placementPolicy in the chart's values reaches the controller: a ConfigMap holding it as the
 * YAML `--placement-policy` reads (parsed here by the controller's own parser), mounted read-only, named by
 * RLHF_PLACEMENT_POLICY, with a checksum that rolls the pods when it changes. By default it allows nothing,
 * and values.schema.json refuses a malformed policy before anything is installed.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { emptyPlacementPolicy, parsePlacementPolicyYaml } from '@rlhf/run-spec';
import { chartRenderer, type K8sObject } from './render-chart.js';

const chart = chartRenderer();
after(() => chart.dispose());

const policy = {
  allowedTolerations: [
    { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'dedicated', value: 'rlhf' },
  ],
  allowedPriorityClasses: ['rlhf-batch'],
  allowedNodeSelectors: { 'nvidia.com/gpu.product': ['H100', 'A100'], 'topology.kubernetes.io/zone': ['*'] },
  allowedSchedulerNames: ['volcano'],
  allowAffinity: true,
  allowedVolumeClaims: ['team-data'],
};

function controllerParts(objs: K8sObject[]) {
  const deployment = objs.find((o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-controller'));
  assert.ok(deployment, 'the controller Deployment');
  const pod = deployment.spec.template;
  const container = pod.spec.containers[0];
  const file = container.env.find((e: { name: string }) => e.name === 'RLHF_PLACEMENT_POLICY')
    ?.value as string;
  assert.ok(file, 'RLHF_PLACEMENT_POLICY names the policy file');
  const mount = container.volumeMounts.find((m: { mountPath: string }) => file.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `a volume mounted where ${file} is`);
  assert.equal(mount.readOnly, true);
  const volume = pod.spec.volumes.find((v: { name: string }) => v.name === mount.name);
  const configMap = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === volume?.configMap?.name);
  assert.ok(configMap, 'the mounted ConfigMap is rendered');
  const text = configMap.data[file.slice(mount.mountPath.length + 1)] as string;
  assert.ok(text !== undefined, 'the ConfigMap holds the file the env names');
  return { text, checksum: pod.metadata.annotations['checksum/placement-policy'] as string };
}

test('the values policy reaches the controller as the file it reads', () => {
  const { text } = controllerParts(chart.render({ controller: { placementPolicy: policy } }));
  const parsed = parsePlacementPolicyYaml(text, 'rendered ConfigMap');
  assert.deepEqual(parsed, {
    ...policy,
    allowedTolerations: [
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'dedicated', operator: 'Equal', value: 'rlhf' },
    ],
  });
});

test('by default runs may ask for no toleration, priority class, selector, scheduler or affinity', () => {
  const { text, checksum } = controllerParts(chart.render());
  assert.deepEqual(parsePlacementPolicyYaml(text, 'rendered ConfigMap'), emptyPlacementPolicy);
  const changed = controllerParts(chart.render({ controller: { placementPolicy: policy } }));
  assert.notEqual(changed.checksum, checksum, 'a changed policy rolls the controller pods');
  assert.match(checksum, /^[0-9a-f]{64}$/);
});

test('values.schema.json refuses a malformed policy', () => {
  const bad: [object, RegExp][] = [
    [{ allowedTolerations: [{ operator: 'Exists' }] }, /allowedTolerations\/0|key/],
    [{ allowedTolerations: [{ key: 'a', operator: 'Maybe' }] }, /operator/],
    [{ allowedTolerations: [{ key: 'a', effect: 'Never' }] }, /effect/],
    [{ allowedPriorityClasses: 'rlhf-batch' }, /allowedPriorityClasses/],
    [{ allowedNodeSelectors: { pool: 'gpu' } }, /allowedNodeSelectors/],
    [{ allowAffinity: 'sometimes' }, /allowAffinity/],
    [{ allowedQueues: ['q'] }, /allowedQueues/],
  ];
  for (const [placementPolicy, message] of bad) {
    const r = chart.tryRender({ controller: { placementPolicy } });
    assert.notEqual(r.status, 0, `helm template accepted ${JSON.stringify(placementPolicy)}`);
    assert.match(r.err, message, `refused for another reason:\n${r.err}`);
  }
});
