import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidRunError, parseRunYaml } from './parse-run.js';
import { mountClashes, unmountedInputs } from './placement-volumes.js';

const run = (placement: string, inputs = '') => `
apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: byo}
spec:
  policy: {model: file:///data/models/sft}
  judge: {type: reward, model: s3://my-models/rm}
  prompts: {dataset: file:///data/prompts.jsonl${inputs}}
  placement: ${placement}
`;

function problems(yaml: string): string[] {
  try {
    parseRunYaml(yaml);
    return [];
  } catch (e) {
    if (!(e instanceof InvalidRunError)) throw e;
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
}

test('placement.volumes: PersistentVolumeClaims with a name, a claim and an absolute mount path', () => {
  const spec = parseRunYaml(
    run('{volumes: [{name: data, claimName: rlhf-data, mountPath: /data, readOnly: true}]}'),
  ).spec;
  assert.deepEqual(spec.placement.volumes, [
    { name: 'data', claimName: 'rlhf-data', mountPath: '/data', readOnly: true },
  ]);
  assert.deepEqual(problems(run('{volumes: [{name: Data, claimName: c, mountPath: /d}]}')).length, 1);
  assert.match(
    problems(run('{volumes: [{name: d, claimName: c, mountPath: relative}]}'))[0] ?? '',
    /^spec\.placement\.volumes\[0\]\.mountPath: /,
  );
  assert.match(
    problems(run('{volumes: [{name: d, mountPath: /d}]}'))[0] ?? '',
    /^spec\.placement\.volumes\[0\]\.claimName: is required/,
  );
});

test('volumes that clash with each other or with the pods own paths are refused, naming the entry', () => {
  assert.deepEqual(
    problems(
      run(
        '{volumes: [{name: a, claimName: c1, mountPath: /data}, {name: a, claimName: c2, mountPath: /data/sub}]}',
      ),
    ),
    [
      'spec.placement.volumes[1].name: "a" is also the name of volumes[0]',
      'spec.placement.volumes[1].mountPath: /data/sub overlaps volumes[0] at /data: give each volume its own directory',
    ],
  );
  for (const mount of ['/tmp', '/tmp/x', '/', '/etc', '/data/../tmp'])
    assert.match(
      problems(run(`{volumes: [{name: a, claimName: c, mountPath: "${mount}"}]}`))[0] ?? '',
      /^spec\.placement\.volumes\[0\]\.mountPath: /,
      mount,
    );
  const spec = parseRunYaml(
    run('{volumes: [{name: a, claimName: c, mountPath: /var/cache/huggingface/x}]}'),
  ).spec;
  assert.match(
    mountClashes(spec.placement.volumes, ['/var/cache/huggingface'])[0]?.message ?? '',
    /overlaps \/var\/cache\/huggingface/,
  );
  assert.deepEqual(mountClashes(spec.placement.volumes, ['/data']), []);
});

test('file:// inputs of a cluster run must lie under a mounted volume; other schemes need none', () => {
  const none = parseRunYaml(run('{}', ', eval: nats-obj://rlhf-data/eval.jsonl')).spec;
  assert.deepEqual(
    unmountedInputs(none, []).map((p) => p.path),
    ['spec.policy.model', 'spec.prompts.dataset'],
  );
  assert.match(
    unmountedInputs(none, [])[0]?.message ?? '',
    /add its PersistentVolumeClaim to spec\.placement\.volumes/,
  );
  // Under the chart's volume, or the run's own.
  assert.deepEqual(unmountedInputs(none, ['/data/']), []);
  const own = parseRunYaml(run('{volumes: [{name: d, claimName: c, mountPath: /data/models}]}')).spec;
  assert.deepEqual(
    unmountedInputs(own, []).map((p) => p.path),
    ['spec.prompts.dataset'],
  );
  // A path that only starts with the mount's name is not under it.
  const near = parseRunYaml(run('{volumes: [{name: d, claimName: c, mountPath: /dat}]}')).spec;
  assert.equal(unmountedInputs(near, []).length, 2);
});
