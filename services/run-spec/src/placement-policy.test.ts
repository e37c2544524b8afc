import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRunYaml } from './parse-run.js';
import { placementProblems, tolerationAllowed } from './placement-check.js';
import {
  emptyPlacementPolicy,
  InvalidPlacementPolicyError,
  parsePlacementPolicy,
  parsePlacementPolicyYaml,
} from './placement-policy.js';

const policy = parsePlacementPolicyYaml(`
allowedTolerations:
  - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
  - {key: dedicated, value: rlhf}
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
allowedPriorityClasses: [rlhf-batch]
allowedNodeSelectors:
  nvidia.com/gpu.product: [H100, A100]
  topology.kubernetes.io/zone: ["*"]
allowedSchedulerNames: [volcano]
allowAffinity: false
`);

const work = 'volumes: [{name: work, claimName: rlhf-work, mountPath: /work}]';

/**
 * A TrainJob run (so train may ask for GPUs) with `placement`. The shared volume a TrainJob needs is added
 * for validation and taken out again, unless `placement` gives its own volumes: these tests judge the other
 * placement choices.
 */
function runWith(placement: string): ReturnType<typeof parseRunYaml>['spec'] {
  const own = placement.includes('volumes');
  const withWork = own
    ? placement
    : placement.trimStart().startsWith('{')
      ? placement.replace('{', `{${work}, `)
      : `${placement}\n    ${work}`;
  const spec = runYaml(withWork);
  if (!own) delete spec.placement.volumes;
  return spec;
}

function runYaml(placement: string): ReturnType<typeof parseRunYaml>['spec'] {
  return parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: r}
spec:
  policy: {model: nats-obj://m/sft}
  judge: {type: gold, task: sentiment}
  prompts: {dataset: nats-obj://d/p.jsonl}
  reference: previous
  engines: {train: {type: trainjob}}
  placement: ${placement}
`).spec;
}

const problemsOf = (placement: string) =>
  placementProblems(runWith(placement), policy).map((p) => `${p.path}: ${p.message}`);

test('a run without placement choices passes even the empty policy', () => {
  assert.deepEqual(placementProblems(runWith('{train: {gpus: 2}}'), emptyPlacementPolicy), []);
});

test('the empty policy refuses every kind of choice, naming each field and "none"', () => {
  const spec = runWith(`
    generate: {tolerations: [{key: a, operator: Exists}], nodeSelector: {pool: gpu}}
    train: {priorityClassName: high, affinity: {nodeAffinity: {}}}
    schedulerName: volcano`);
  const got = placementProblems(spec, emptyPlacementPolicy);
  assert.deepEqual(
    got.map((p) => p.path),
    [
      'spec.placement.generate.tolerations[0]',
      'spec.placement.generate.nodeSelector["pool"]',
      'spec.placement.train.priorityClassName',
      'spec.placement.train.affinity',
      'spec.placement.schedulerName',
    ],
  );
  assert.match(got[0]?.message ?? '', /allowed tolerations: none/);
  assert.match(got[1]?.message ?? '', /allowed node labels: none/);
  assert.match(got[2]?.message ?? '', /"high" is not allowed.*allowed priority classes: none/);
  assert.match(got[3]?.message ?? '', /allowAffinity is false/);
  assert.match(got[4]?.message ?? '', /"volcano" is not allowed.*allowed schedulers: none/);
});

test('allowed choices of every kind pass', () => {
  assert.deepEqual(
    problemsOf(`
    generate:
      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}, {key: dedicated, operator: Equal, value: rlhf, effect: NoExecute}]
      nodeSelector: {nvidia.com/gpu.product: H100, topology.kubernetes.io/zone: eu-west-1a}
      priorityClassName: rlhf-batch
    train:
      tolerations: [{key: nvidia.com/gpu, operator: Equal, value: h100, effect: NoSchedule}]
      nodeSelector: {nvidia.com/gpu.product: A100}
    evaluate:
      tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 60}]
    schedulerName: volcano`),
    [],
  );
});

test('tolerations: a run toleration must tolerate nothing its rule does not', () => {
  const rule = policy.allowedTolerations;
  const t = (o: object) => ({ key: '', operator: 'Equal' as const, value: '', effect: '', ...o });
  // Exists rule with an effect: any value, that effect only.
  assert.ok(tolerationAllowed(t({ key: 'nvidia.com/gpu', value: 'x', effect: 'NoSchedule' }), rule[0]!));
  assert.ok(!tolerationAllowed(t({ key: 'nvidia.com/gpu', operator: 'Exists' }), rule[0]!), 'every effect');
  assert.ok(!tolerationAllowed(t({ key: 'nvidia.com/gpu', effect: 'NoExecute' }), rule[0]!));
  assert.ok(!tolerationAllowed(t({ key: 'other', operator: 'Exists', effect: 'NoSchedule' }), rule[0]!));
  // Equal rule without an effect: that value, any effect, never Exists.
  assert.ok(tolerationAllowed(t({ key: 'dedicated', value: 'rlhf' }), rule[1]!));
  assert.ok(tolerationAllowed(t({ key: 'dedicated', value: 'rlhf', effect: 'NoSchedule' }), rule[1]!));
  assert.ok(!tolerationAllowed(t({ key: 'dedicated', value: 'other' }), rule[1]!));
  assert.ok(!tolerationAllowed(t({ key: 'dedicated', operator: 'Exists' }), rule[1]!), 'any value');
  // tolerationSeconds caps the run's; absent in the run means forever.
  const unreachable = { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' };
  assert.ok(tolerationAllowed(t({ ...unreachable, tolerationSeconds: 300 }), rule[2]!));
  assert.ok(!tolerationAllowed(t({ ...unreachable, tolerationSeconds: 301 }), rule[2]!));
  assert.ok(!tolerationAllowed(t(unreachable), rule[2]!));
});

test('refusals name the exact field and what is allowed', () => {
  const got = problemsOf(`
    judge:
      tolerations: [{key: nvidia.com/gpu, operator: Exists}, {operator: Exists}, {key: a, effect: Sometimes}, {key: b, weird: 1}]
      nodeSelector: {nvidia.com/gpu.product: T4, reserved-for: team-a}
      priorityClassName: system-node-critical
    schedulerName: default-scheduler`);
  assert.equal(got.length, 8, got.join('\n'));
  assert.match(
    got[0] ?? '',
    /^spec\.placement\.judge\.tolerations\[0\]: \{key: nvidia\.com\/gpu, operator: Exists, any effect\} is not allowed by the placement policy; allowed tolerations: \{key: nvidia\.com\/gpu, operator: Exists, effect: NoSchedule\}, \{key: dedicated, operator: Equal, value: "rlhf", any effect\}/,
  );
  assert.match(got[0] ?? '', /controller\.placementPolicy\.allowedTolerations/);
  assert.match(
    got[1] ?? '',
    /^spec\.placement\.judge\.tolerations\[1\]: has no key, so it tolerates every taint/,
  );
  assert.match(
    got[2] ?? '',
    /^spec\.placement\.judge\.tolerations\[2\]: is not a valid toleration: effect must be/,
  );
  assert.match(got[3] ?? '', /^spec\.placement\.judge\.tolerations\[3\]: is not a valid toleration: .*weird/);
  assert.match(
    got[4] ?? '',
    /^spec\.placement\.judge\.priorityClassName: "system-node-critical" is not allowed .*allowed priority classes: "rlhf-batch"/,
  );
  assert.match(
    got[5] ?? '',
    /^spec\.placement\.judge\.nodeSelector\["nvidia\.com\/gpu\.product"\]: value "T4" is not allowed .*allowed values of nvidia\.com\/gpu\.product: "H100", "A100"/,
  );
  assert.match(
    got[6] ?? '',
    /^spec\.placement\.judge\.nodeSelector\["reserved-for"\]: node label "reserved-for" is not allowed .*allowed node labels: "nvidia\.com\/gpu\.product", "topology\.kubernetes\.io\/zone"/,
  );
  assert.deepEqual(problemsOf('{schedulerName: default-scheduler}'), [
    'spec.placement.schedulerName: "default-scheduler" is not allowed by the placement policy; allowed schedulers: "volcano" (ask the cluster operator to add it to controller.placementPolicy.allowedSchedulerNames)',
  ]);
});

test('a policy file: absent fields allow nothing; every bad field is named', () => {
  assert.deepEqual(parsePlacementPolicyYaml(''), emptyPlacementPolicy);
  assert.deepEqual(parsePlacementPolicy({ allowAffinity: true }), {
    ...emptyPlacementPolicy,
    allowAffinity: true,
  });
  try {
    parsePlacementPolicyYaml(
      `allowedTolerations: [{operator: Exists}, {key: a, operator: Maybe}, {key: b, operator: Exists, value: x}, {key: c, effect: Never, colour: red}]
allowedPriorityClasses: high
allowedNodeSelectors: {pool: [gpu, "*"], zone: [""]}
allowedSchedulerNames: [""]
allowAffinity: "yes"
allowedQueues: [q]`,
      'policy.yaml',
    );
    assert.fail('expected the policy to be refused');
  } catch (e) {
    assert.ok(e instanceof InvalidPlacementPolicyError);
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.deepEqual(
      e.problems.map((p) => p.path),
      [
        'allowedQueues',
        'allowedTolerations[0].key',
        'allowedTolerations[1].operator',
        'allowedTolerations[2].value',
        'allowedTolerations[3].colour',
        'allowedTolerations[3].effect',
        'allowAffinity',
        'allowedPriorityClasses',
        'allowedNodeSelectors["pool"]',
        'allowedNodeSelectors["zone"][0]',
        'allowedSchedulerNames[0]',
      ],
    );
    assert.match(
      e.message,
      /^policy\.yaml is not a valid placement policy: allowedQueues: is not a placement policy field/,
    );
    assert.equal(e.field, 'allowedQueues');
  }
  assert.throws(() => parsePlacementPolicyYaml('[a, b'), /is not valid YAML/);
  assert.throws(() => parsePlacementPolicyYaml('- a'), /\(document\): must be a mapping/);
});

test('a hostile toleration key stays quoted on one line', () => {
  const spec = runWith(
    '{train: {tolerations: [{key: "a\\nspec.placement.train: allowed", operator: Exists}]}}',
  );
  const [p] = placementProblems(spec, policy);
  assert.match(
    p?.message ?? '',
    /^\{key: "a\\nspec\.placement\.train: allowed", operator: Exists, any effect\} is not allowed/,
  );
  assert.ok(!p?.message.includes('\n'));
});

test('volume claims: only those the policy lists, or any with "*"', () => {
  const volumes =
    '{volumes: [{name: a, claimName: team-data, mountPath: /data}, {name: b, claimName: other, mountPath: /other}]}';
  const listed = parsePlacementPolicy({ allowedVolumeClaims: ['team-data'] });
  assert.deepEqual(
    placementProblems(runWith(volumes), listed).map((p) => p.path),
    ['spec.placement.volumes[1].claimName'],
  );
  assert.match(
    placementProblems(runWith(volumes), emptyPlacementPolicy)[0]?.message ?? '',
    /"team-data" is not allowed by the placement policy; .*controller\.placementPolicy\.allowedVolumeClaims/,
  );
  assert.deepEqual(
    placementProblems(runWith(volumes), parsePlacementPolicy({ allowedVolumeClaims: ['*'] })),
    [],
  );
  assert.throws(
    () => parsePlacementPolicy({ allowedVolumeClaims: ['*', 'x'] }),
    (e: unknown) => e instanceof InvalidPlacementPolicyError && e.field === 'allowedVolumeClaims',
  );
});
