/**
 * The placement check covers every Job the controller makes: for each unit of a run (setup and every
 * stage of every iteration), the stage pod's tolerations, node selector, affinity, priority class and
 * scheduler come from spec.placement and nowhere else, so a spec the policy allows yields only pods the
 * policy allows, and a run that asks for nothing gets pods with none of these.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1PodSpec } from '@kubernetes/client-node';
import { stageJob } from '@rlhf/controller';
import {
  type PlacementGroup,
  parsePlacementPolicyYaml,
  parseRunYaml,
  placementProblems,
} from '@rlhf/run-spec';
import { stageUnits } from '@rlhf/workflow';

const owner = { apiVersion: 'rlhf.dev/v1alpha1', kind: 'RLHFRun', name: 'r', uid: 'u', controller: true };
const config = { image: 'img', natsUrl: 'nats://n:4222' };

const group = (n: number) =>
  `{nodeSelector: {pool: p${n}}, tolerations: [{key: t${n}, operator: Exists}], priorityClassName: c${n}, affinity: {podAntiAffinity: {}}}`;
const run = parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: r, namespace: ns}
spec:
  policy: {model: nats-obj://m/sft}
  judge: {type: reward, model: nats-obj://m/rm}
  prompts: {dataset: nats-obj://d/p.jsonl}
  iterations: 2
  placement:
    generate: ${group(1)}
    judge: ${group(2)}
    train: ${group(3)}
    evaluate: ${group(4)}
    schedulerName: volcano
`);
const policy = parsePlacementPolicyYaml(`
allowedTolerations: [{key: t1, operator: Exists}, {key: t2, operator: Exists}, {key: t3, operator: Exists}, {key: t4, operator: Exists}]
allowedPriorityClasses: [c1, c2, c3, c4]
allowedNodeSelectors: {pool: [p1, p2, p3, p4]}
allowedSchedulerNames: [volcano]
allowAffinity: true
`);

const placementOf = (pod: V1PodSpec) => ({
  nodeSelector: pod.nodeSelector,
  tolerations: pod.tolerations,
  affinity: pod.affinity,
  priorityClassName: pod.priorityClassName,
});
const fromGroup = (g: PlacementGroup) => ({
  nodeSelector: g.nodeSelector,
  tolerations: g.tolerations,
  affinity: g.affinity,
  priorityClassName: g.priorityClassName,
});

test('every unit pod carries one placement group of the spec, or none, and the spec scheduler', () => {
  assert.deepEqual(placementProblems(run.spec, policy), [], 'the spec is allowed');
  const groups = ['generate', 'judge', 'train', 'evaluate'] as const;
  const units = stageUnits(run.spec);
  assert.equal(units.length, 11);
  for (const unit of units) {
    const pod = stageJob({ run: { name: 'r', namespace: 'ns', spec: run.spec }, unit, owner, config }).spec
      ?.template.spec as V1PodSpec;
    const got = placementOf(pod);
    const source = groups.find(
      (g) => JSON.stringify(fromGroup(run.spec.placement[g])) === JSON.stringify(got),
    );
    if (unit.stage === 'pair')
      assert.deepEqual(JSON.parse(JSON.stringify(got)), {}, 'pairing is CPU, no placement');
    else assert.ok(source, `${unit.stage} ${unit.iteration}: placement from no group of the spec`);
    assert.equal(pod.schedulerName, 'volcano');
  }
});

test('a run that asks for nothing gets pods with no toleration, selector, affinity, class or scheduler', () => {
  const bare = parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: r}
spec:
  policy: {model: nats-obj://m/sft}
  judge: {type: gold, task: sentiment}
  prompts: {dataset: nats-obj://d/p.jsonl}
`).spec;
  for (const unit of stageUnits(bare)) {
    const pod = stageJob({ run: { name: 'r', namespace: 'ns', spec: bare }, unit, owner, config }).spec
      ?.template.spec as V1PodSpec;
    assert.deepEqual(
      JSON.parse(JSON.stringify({ ...placementOf(pod), schedulerName: pod.schedulerName })),
      {},
    );
  }
});
